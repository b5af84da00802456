from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Access reviews"

    def ready(self):
        from django.db.models.signals import post_migrate

        from reviews import tasks

        post_migrate.connect(tasks.ensure_periodic_schedules, sender=self)
        tasks.register_due_work()
