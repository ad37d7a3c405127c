"""Preparing a workshop room of offline laptops: the install kit (`attnlab.room.kit`)."""
