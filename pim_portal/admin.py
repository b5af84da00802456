from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from pim_portal.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "display_name", "email", "manager", "time_zone", "is_active"]
    search_fields = ["username", "display_name", "email"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        ("Portal", {"fields": ["display_name", "manager", "time_zone"]}),
    ]
    autocomplete_fields = ["manager"]
