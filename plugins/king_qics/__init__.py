"""king-qics-sync: keep King Finance (iMUIS Online) and QicsMilestones in sync with Airflow.

This module stays import-light: Airflow's providers manager calls ``get_provider_info`` in every
component (API server, scheduler, workers) to learn our two connection types.
"""

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Provider metadata read through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": "king-qics-sync",
        "name": "King Finance <-> QicsMilestones sync",
        "description": "Hooks and connection types for King Finance Cloudswitch and QicsMilestones REST v3.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "king_finance",
                "hook-class-name": "king_qics.hooks.king.KingFinanceHook",
                "hook-name": "King Finance (Cloudswitch)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "password", "extra"],
                    "relabeling": {"host": "Cloudswitch URL"},
                    "placeholders": {"host": "https://api.kingfinance.nl/v1/ws1_xml.asmx"},
                },
                "conn-fields": {
                    "partner_key": {
                        "label": "Partner key",
                        "description": "The software partner key issued by KING/MUIS.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "environment_code": {
                        "label": "Environment code (omgevingscode)",
                        "description": "Gives access to one administration; created in iMUIS Online.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                },
            },
            {
                "connection-type": "qics_milestones",
                "hook-class-name": "king_qics.hooks.qics.QicsMilestonesHook",
                "hook-name": "QicsMilestones (REST v3)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "password", "extra"],
                    "relabeling": {"host": "QicsMilestones URL"},
                    "placeholders": {"host": "https://qicsmilestones.qics.nl"},
                },
                "conn-fields": {
                    "client_id": {
                        "label": "Client ID",
                        "description": "Client ID of the OAuth application created in QicsMilestones.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "client_secret": {
                        "label": "Client secret",
                        "description": "Client secret of the OAuth application.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "refresh_token": {
                        "label": "Refresh token",
                        "description": "Refresh token from the authorization-code exchange. It rotates"
                        " on use; the rotated token is kept (encrypted) in the sync-state store.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "company_id": {
                        "label": "Company ID",
                        "description": "The QicsMilestones CompanyId of this administration.",
                        "schema": {"type": ["integer", "string", "null"]},
                    },
                },
            },
        ],
    }
