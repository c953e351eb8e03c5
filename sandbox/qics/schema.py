"""The emulated entity sets: field names, types, required fields, foreign keys, enums, limits.

Types: ``id`` (64-bit integer, JSON string on output), ``dec`` (decimal, JSON string on output),
``int`` (32-bit integer, JSON number), ``bool``, ``str``, ``date`` (``YYYY-MM-DD``), ``datetime``
(ISO 8601, UTC). See docs/sandbox_qics.md for which of these are documented and which assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EntitySet:
    name: str
    key: str
    fields: dict[str, str]
    required: frozenset[str] = frozenset()
    foreign_keys: dict[str, str] = field(default_factory=dict)
    enums: dict[str, str] = field(default_factory=dict)  # field -> enum type (ENUMS)
    max_length: dict[str, int] = field(default_factory=dict)
    read_only: frozenset[str] = frozenset()  # besides the key; ignored on input
    server_ids: frozenset[str] = frozenset()  # global ids the server assigns when not given
    unique: tuple[str, ...] = ()  # a code unique per CompanyId
    writable: bool = True
    creatable: bool = True


def _f(spec: str) -> dict[str, str]:
    out = {}
    for item in spec.split():
        name, _, kind = item.partition(":")
        out[name] = kind or "str"
    return out


# Enum types (in NAMESPACE) -> members. Which are documented: docs/sandboxes.md, Qics rows 27-28.
NAMESPACE = "QicsUnity.Api.Areas.V3.Models"
ENUMS = {
    "PaymentConditionType": ("Days", "EndOfMonth"),
    "ItemType": ("Hour", "Expense", "Other"),
    "EntityType": ("General", "Invoice", "Customer", "Project", "Employee", "Item"),
    "CustomerType": ("Customer", "Supplier"),
    "IcpReturn": ("None", "Goods", "Services"),
    "InvoiceHeaderState": ("Concept", "Approved", "Processed", "Rejected"),
    "InvoiceHeaderType": ("Invoice", "CreditNote"),
    # V3 names it InvoiceLineType2 (OverviewInvoiceLine); the members are V2's InvoiceLineType's.
    "InvoiceLineType2": (
        "Hour",
        "Expense",
        "Term",
        "Advance",
        "Manual",
        "ManualAdvance",
        "Settlement",
        "Surcharge",
    ),
    "InvoiceLineState": ("Normal", "Deducted"),
    "InvoiceLineOrigin": ("TimeExpenseEntry", "ProjectInstallment", "Manual"),
}

SETS: dict[str, EntitySet] = {}


def _add(entity: EntitySet) -> None:
    SETS[entity.name] = entity


_add(
    EntitySet(
        "Company",
        "CompanyId",
        _f(
            "CompanyId:id Name Code CurrencyId:id InvoiceLanguage InvoiceNumberPrefix "
            "InvoiceNumberLength:int PriceIndex:dec Address1 ZipCode City CountryCode EmailAddress"
        ),
        required=frozenset({"Name", "Code", "CurrencyId"}),
        creatable=False,
    )
)
_add(
    EntitySet(
        "VatCode",
        "VatCodeId",
        _f("VatCodeId:id Code Name Percentage:dec ReverseCharge:bool IsDefault:bool IcpReturn CompanyId:id"),
        required=frozenset({"Code", "Name", "Percentage", "IsDefault"}),
        foreign_keys={"CompanyId": "Company"},
        enums={"IcpReturn": "IcpReturn"},
        unique=("Code",),
    )
)
_add(
    EntitySet(
        "PaymentCondition",
        "PaymentConditionId",
        _f("PaymentConditionId:id Code Name Description CompanyId:id PaymentTerm:int PaymentConditionType"),
        required=frozenset({"Code", "Name", "PaymentTerm", "PaymentConditionType"}),
        foreign_keys={"CompanyId": "Company"},
        enums={"PaymentConditionType": "PaymentConditionType"},
        unique=("Code",),
    )
)
_add(
    EntitySet(
        "CostCenter",
        "CostCenterId",
        _f("CostCenterId:id Code Name CompanyId:id IsActive:bool"),
        required=frozenset({"Code", "Name", "IsActive"}),
        foreign_keys={"CompanyId": "Company"},
        unique=("Code",),
    )
)
_add(
    EntitySet(
        "ItemCompany",
        "ItemCompanyId",
        _f(
            "ItemCompanyId:id ItemId:id CompanyId:id ItemCode Name LongDescription ItemType VatCodeId:id "
            "GLAccountRevenue WillBeInvoiced:bool AllowTimeEntry:bool AllowPriceModifications:bool "
            "IsActive:bool ItemGroupId:id SurchargeItemCompanyId:id SurchargePercentage:dec"
        ),
        required=frozenset(
            {
                "ItemCode",
                "Name",
                "ItemType",
                "WillBeInvoiced",
                "AllowTimeEntry",
                "AllowPriceModifications",
                "IsActive",
            }
        ),
        foreign_keys={
            "CompanyId": "Company",
            "VatCodeId": "VatCode",
            "SurchargeItemCompanyId": "ItemCompany",
        },
        enums={"ItemType": "ItemType"},
        server_ids=frozenset({"ItemId"}),
        unique=("ItemCode",),
    )
)
_add(
    EntitySet(
        "CustomerCompany",
        "CustomerCompanyId",
        _f(
            "CustomerCompanyId:id CustomerId:id CompanyId:id CustomerCode Name IsActive:bool CostCenterId:id "
            "VatCodeId:id PaymentConditionId:id ManagerEmployeeCompanyId:id "
            "InvoiceAddressSameAsVisitAddress:bool ContactPersonName VisitAddressContactPerson "
            "VisitAddressAddress1 VisitAddressAddress2 VisitAddressAddress3 VisitAddressCity "
            "VisitAddressZipCode VisitAddressCountry VisitAddressCountryCode VisitAddressCounty "
            "VisitAddressEmailAddress VisitAddressPhoneNumber InvoiceAddressAddress1 InvoiceAddressCity "
            "InvoiceAddressZipCode InvoiceAddressCountryCode VatNumber Identification SendInvoiceTo "
            "InvoiceSpecification:bool CustomerType CategoryId:id PriceIndex:dec"
        ),
        required=frozenset({"CustomerCode", "Name", "IsActive"}),
        foreign_keys={
            "CompanyId": "Company",
            "CostCenterId": "CostCenter",
            "VatCodeId": "VatCode",
            "PaymentConditionId": "PaymentCondition",
            "ManagerEmployeeCompanyId": "EmployeeCompany",
        },
        enums={"CustomerType": "CustomerType"},
        max_length={"Name": 50},
        server_ids=frozenset({"CustomerId"}),
        unique=("CustomerCode",),
    )
)
_add(
    EntitySet(
        "Employee",
        "EmployeeId",
        _f("EmployeeId:id FirstName MiddleName LastName Name EmailAddress PhoneNumber IsActive:bool"),
        required=frozenset({"FirstName", "LastName", "IsActive"}),
    )
)
_add(
    EntitySet(
        # The per-company employee record, self-contained like CustomerCompany (V2's Employee was
        # per company: key ResourceCompanyId, with the names). EmployeeId, the global person, is
        # assigned by the server when not given (assumption). EmployeeNumber is ResourceNumber, an
        # integer (OverviewInvoiceLine.EmployeeCompanyEmployeeNumber: "ResourceCompany.ResourceNumber",
        # integer, Nullable); Abbreviation is Resource.Abbreviation, text (ProjectResourceCompany-
        # ResourceAbbreviation on the same page); the V3 property name Abbreviation is an assumption.
        "EmployeeCompany",
        "EmployeeCompanyId",
        _f(
            "EmployeeCompanyId:id EmployeeId:id CompanyId:id EmployeeNumber:int Abbreviation FirstName "
            "MiddleName LastName EmailAddress PhoneNumber IsActive:bool"
        ),
        required=frozenset({"CompanyId", "FirstName", "LastName", "IsActive"}),
        foreign_keys={"CompanyId": "Company"},
        server_ids=frozenset({"EmployeeId"}),
        unique=("EmployeeNumber", "Abbreviation"),
    )
)
_add(
    EntitySet(
        "Project",
        "ProjectId",
        _f(
            "ProjectId:id ProjectCode Name CompanyId:id CustomerCompanyId:id CostCenterId:id "
            "ManagerEmployeeCompanyId:id StartDate:date EndDate:date IsActive:bool AllowPlanning:bool "
            "HideBudgetsOnTimesheet:bool IsContractReceived:bool IsBudgetMandatoryOnTimeEntry:bool "
            "LongDescription"
        ),
        required=frozenset(
            {
                "ProjectCode",
                "Name",
                "CompanyId",
                "IsActive",
                "AllowPlanning",
                "HideBudgetsOnTimesheet",
                "IsContractReceived",
                "IsBudgetMandatoryOnTimeEntry",
            }
        ),
        foreign_keys={
            "CompanyId": "Company",
            "CustomerCompanyId": "CustomerCompany",
            "CostCenterId": "CostCenter",
            "ManagerEmployeeCompanyId": "EmployeeCompany",
        },
        unique=("ProjectCode",),
    )
)
_add(
    EntitySet(
        "Invoice",
        "InvoiceHeaderId",
        _f(
            "InvoiceHeaderId:id InvoiceNumber InvoiceDate:datetime InvoiceHeaderState InvoiceHeaderType "
            "CompanyId:id CustomerCompanyId:id InvoiceCustomerCompanyId:id CurrencyId:id InvoiceText "
            "InvoiceReference OriginalInvoiceHeaderId:id OriginalInvoiceNumber IsWrittenOff:bool "
            "TotalAmountExclVat:dec TotalVatAmount:dec TotalAmountInclVat:dec DueDate:datetime "
            "PaymentTerm:int PaymentConditionType CreatedOn:datetime"
        ),
        enums={
            "InvoiceHeaderState": "InvoiceHeaderState",
            "InvoiceHeaderType": "InvoiceHeaderType",
            "PaymentConditionType": "PaymentConditionType",
        },
        read_only=frozenset({"PaymentTerm", "PaymentConditionType"}),
        writable=False,
        creatable=False,
    )
)
_add(
    EntitySet(
        # Exactly the 8 documented properties (help page GET-V3-odata-InvoiceLine(key)).
        "InvoiceLine",
        "InvoiceLineId",
        _f(
            "InvoiceLineId:id Date:datetime Description InvoiceGroup Price:dec Remarks Quantity:dec "
            "InvoiceMutationReasonId:id"
        ),
        writable=False,
        creatable=False,
    )
)
_add(
    EntitySet(
        # The documented visible properties (help page GET-V3-odata-OverviewInvoiceLine, cut off after
        # ItemCompanyId), then the assumed ones from Description on.
        "OverviewInvoiceLine",
        "InvoiceLineId",
        _f(
            "InvoiceLineId:id InvoiceHeaderId:id InvoiceLineState InvoiceLineType2 Origin Date:datetime "
            "ProductionId:id ProjectId:id ProjectCode ProjectName ProjectResourceCompanyResourceNumber:int "
            "ProjectResourceCompanyResourceAbbreviation EmployeeId:id EmployeeName "
            "EmployeeCompanyEmployeeNumber:int EmployeeCompanyId:id ItemId:id ItemName ItemCompanyItemCode "
            "ItemCompanyId:id "
            "Description Quantity:dec Price:dec AmountExclVat:dec VatCodeId:id VatPercentage:dec "
            "VatAmount:dec GLAccountRevenue CostCenterId:id"
        ),
        enums={
            "InvoiceLineState": "InvoiceLineState",
            "InvoiceLineType2": "InvoiceLineType2",
            "Origin": "InvoiceLineOrigin",
        },
        writable=False,
        creatable=False,
    )
)
_add(
    EntitySet(
        "EntityState",
        "EntityStateId",
        _f(
            "EntityStateId:id CompanyId:id EntityId:id EntityType DataSource DataSourceKey "
            "DataSourceDate:datetime IsError:bool Message"
        ),
        required=frozenset({"DataSource", "DataSourceDate", "IsError"}),
        foreign_keys={"CompanyId": "Company"},
        enums={"EntityType": "EntityType"},
        writable=False,
    )
)
