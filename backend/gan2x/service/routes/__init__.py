"""The endpoints, one router per resource: ``system`` (health, capabilities),
``uploads``, ``jobs``, ``batches``; ``views`` turns store records into the
response models of ``schemas.py``."""
