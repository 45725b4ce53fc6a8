"""Persistence: the ORM models and database, media storage, images, settings, audit."""
