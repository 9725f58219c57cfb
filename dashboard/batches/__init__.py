"""Bulk actions: select bots, preview, confirm once; items executed by workers in any process."""
