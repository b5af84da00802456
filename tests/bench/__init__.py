"""`make bench`: the main pages at the size of a real organization. See __main__.py."""
