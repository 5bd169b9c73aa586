"""Keys the service generates once and keeps (``integration.store.service_keys``)."""
from integration.store.types import text

# Insert-if-absent, then read back: whichever process's insert landed first, everyone reads its value.
INSERT_IF_ABSENT = text("INSERT INTO service_keys (name, value, created_at) VALUES (:name, :value, :now)"
                        " ON CONFLICT (name) DO NOTHING")
VALUE = text("SELECT value FROM service_keys WHERE name = :name")
