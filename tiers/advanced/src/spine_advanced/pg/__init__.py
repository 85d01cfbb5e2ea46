"""The advanced tier's PostgreSQL schema: a migration chain applied after intermediate's."""
