"""King master-data writes for tests: King changed as a person changes it in King's own screens
(Create/Update/DeleteStamtabelRecord through a hook's session). The product never writes King
master data, so these live here, not in the hook."""

from __future__ import annotations

from typing import Any

from king_qics.errors import RecordValidationError
from king_qics.hooks.king.schema import key_of
from king_qics.hooks.king.soap import dataset


def create_record(king, table: str, values: dict[str, Any]) -> str:
    """CreateStamTabelRecord; King's primary key. A refusal raises RecordValidationError."""
    table = table.upper()
    stamtabel = dataset([("METADATA", {"TABLE": table}), ("DATA", _upper(values))])
    answer = king.call(
        "CreateStamTabelRecord", [("Stamtabel", stamtabel), ("Primarykey", "")], idempotent=False
    )
    _refused(answer, values.get(key_of(table)[0]) or values.get("ZKSL"))
    primary_key = answer.get("Primarykey")
    return ";".join(primary_key) if isinstance(primary_key, list) else str(primary_key or "")


def update_record(king, table: str, key_field: str, key_value: Any, values: dict[str, Any]) -> None:
    """UpdateStamtabelRecord of the record whose ``key_field`` equals ``key_value``."""
    mutatie = dataset([("SELECTION", _selection(table, key_field, key_value)), ("DATA", _upper(values))])
    _refused(king.call("UpdateStamtabelRecord", [("Mutatie", mutatie)]), key_value)


def delete_record(king, table: str, key_field: str, key_value: Any) -> None:
    mutatie = dataset([("SELECTION", _selection(table, key_field, key_value))])
    _refused(king.call("DeleteStamtabelRecord", [("Mutatie", mutatie)]), key_value)


def _selection(table: str, key_field: str, key_value: Any) -> dict[str, Any]:
    return {
        "TABLE": table.upper(),
        "WHEREFIELDS": key_field.upper(),
        "WHEREOPERATORS": "=",
        "WHEREVALUES": key_value,
    }


def _refused(answer: dict, key: Any) -> None:
    if not answer["Result"]:
        raise RecordValidationError(key, answer["Foutmelding"] or "rejected without a reason")


def _upper(values: dict[str, Any]) -> dict[str, Any]:
    return {str(name).upper(): value for name, value in values.items()}
