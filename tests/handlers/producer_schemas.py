"""The schemas the producer's tests read files by besides the default: a product catalogue whose key
is not an email, with aliases and a column of each other type."""

from handlers.common.schema import parse_schema

PRODUCTS = parse_schema(
    {
        "name": "products",
        "key": "sku",
        "columns": [
            {"name": "sku", "type": "text", "maxLength": 64, "aliases": ["product id", "item_code"]},
            {"name": "title", "type": "text", "required": True, "aliases": ["name"]},
            {"name": "price", "type": "decimal", "min": "0", "required": True},
            {"name": "stock", "type": "integer", "aliases": ["qty"]},
            {"name": "active", "type": "boolean"},
            {"name": "since", "type": "date"},
            {"name": "status", "type": "enum", "values": ["draft", "live", "retired"]},
            {"name": "at", "type": "datetime"},
        ],
    }
)
PRODUCTS_HEADER = "sku,title,price,stock,active,since,status,at\n"
