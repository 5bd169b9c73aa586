"""Settings: ``/settings`` (create, list with ``nextToken`` paging, get, update)."""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from .common import (
    SETTING_ENTITY_TYPES,
    SETTINGS_PAGE_DEFAULT,
    SETTINGS_PAGE_MAX,
    ApiError,
    paginate,
)
from .schemas import (
    SettingSchema,
    UpdateSettingSchema,
    _flatten,
    _setting_value_matches,
    load,
)


class SettingsMixin:
    """Settings of :class:`~integration_sandbox.billing.state.BillingSandbox`."""

    # -- settings --------------------------------------------------------------------------------

    @staticmethod
    def _entity_setting(setting: dict) -> dict:
        return {k: setting[k] for k in ("id", "value", "namespace", "name", "dataType")}

    @staticmethod
    def _setting_view(setting: dict) -> dict:
        return {k: setting[k] for k in ("id", "value", "entityType", "entityId", "namespace", "name",
                                        "dataType")}

    def _check_new_settings(self, new: list[dict]) -> None:
        """IDs unique, and (entityType, entityId, namespace, name) unique, including within ``new``."""
        ids: set[str] = set()
        keys: set[tuple[str, str, str, str]] = set()
        for setting in new:
            if setting["id"] in self._settings or setting["id"] in ids:
                raise ApiError(400, f"Setting with id '{setting['id']}' already exists")
            key = self._setting_key(setting)
            if key in self._setting_keys or key in keys:
                raise ApiError(400, f"Setting '{setting['namespace']}.{setting['name']}' already "
                                    f"exists for {setting['entityType']} '{setting['entityId']}'")
            ids.add(setting["id"])
            keys.add(key)

    def _store_setting(self, setting: dict) -> None:
        """Keep a setting and its two indexes (unique keys; settings per entity), so that a uniqueness
        check or an account's view is one look-up, not a scan of every setting of the tenant."""
        self._settings[setting["id"]] = setting
        self._setting_keys.add(self._setting_key(setting))
        self._entity_settings.setdefault((setting["entityType"], setting["entityId"]), {})[setting["id"]] = setting

    def _unstore_setting(self, setting: dict) -> None:
        self._settings.pop(setting["id"], None)
        self._setting_keys.discard(self._setting_key(setting))
        self._entity_settings.get((setting["entityType"], setting["entityId"]), {}).pop(setting["id"], None)

    @staticmethod
    def _setting_key(setting: dict) -> tuple[str, str, str, str]:
        return (setting["entityType"], setting["entityId"], setting["namespace"], setting["name"])

    def _check_entity(self, entity_type: str, entity_id: str) -> None:
        if entity_type == "CUSTOMER":
            self._customer(entity_id)
        elif entity_type == "ACCOUNT":
            self._account(entity_id)

    def create_setting(self, payload: Any) -> dict:
        data = load(SettingSchema(), payload)
        with self._lock:
            self._check_entity(data["entityType"], data["entityId"])
            self._check_new_settings([data])
            self._store_setting(dict(data))
            return self._setting_view(data)

    def get_setting(self, setting_id: str) -> dict:
        with self._lock:
            return self._setting_view(self._setting(setting_id))

    def _setting(self, setting_id: str) -> dict:
        setting = self._settings.get(setting_id)
        if setting is None:
            raise ApiError(404, f"Setting with id '{setting_id}' not found")
        return setting

    def update_setting(self, setting_id: str, payload: Any) -> dict:
        data = load(UpdateSettingSchema(), payload)
        with self._lock:
            setting = self._setting(setting_id)
            updated = {**setting, **data}
            try:
                _setting_value_matches(updated["dataType"], updated["value"])
            except ValidationError as exc:
                raise ApiError(400, "; ".join(_flatten(exc.messages))) from None
            if self._setting_key(updated) != self._setting_key(setting) \
                    and self._setting_key(updated) in self._setting_keys:
                raise ApiError(400, f"Setting '{updated['namespace']}.{updated['name']}' already "
                                    f"exists for {updated['entityType']} '{updated['entityId']}'")
            self._unstore_setting(setting)
            setting.update(data)
            self._store_setting(setting)
            return self._setting_view(setting)

    def list_settings(self, args: Any) -> dict:
        """``GET /settings``: filtered, oldest first, ``pageSize`` (≤50, default 10) per page."""
        entity_type = args.get("entity_type")
        if entity_type is not None and entity_type not in SETTING_ENTITY_TYPES:
            raise ApiError(400, f"entity_type must be one of: {', '.join(SETTING_ENTITY_TYPES)}")
        filters = {"entityType": entity_type, "entityId": args.get("entity_id"),
                   "namespace": args.get("namespace"), "id": args.get("setting_id")}
        with self._lock:
            matching = [s for s in self._settings.values() if all(v is None or s[k] == v for k, v in filters.items())]
            return paginate(matching, args, default=SETTINGS_PAGE_DEFAULT, maximum=SETTINGS_PAGE_MAX,
                            view=self._setting_view)
