"""The schemas the worker's and the query API's tests run with besides the default: a product
catalogue whose key is no email, and a device registry keyed by a whole number."""

from handlers.common.schema import parse_schema

# A product catalogue: a text key that is no email, and a column of each other type.
PRODUCTS_DECLARATION = {
    "name": "products",
    "key": "sku",
    "columns": [
        {"name": "sku", "type": "text", "maxLength": 64},
        {"name": "title", "type": "text", "required": True},
        {"name": "price", "type": "decimal", "min": "0"},
        {"name": "stock", "type": "integer"},
        {"name": "active", "type": "boolean"},
        {"name": "since", "type": "date"},
        {"name": "status", "type": "enum", "values": ["draft", "live", "retired"]},
        {"name": "at", "type": "datetime"},
    ],
}
PRODUCTS = parse_schema(PRODUCTS_DECLARATION)
PRODUCTS_HEADER = "sku,title,price,stock,active,since,status,at\n"
# A device registry keyed by a whole number: its table's key is a DynamoDB number (N).
DEVICES = parse_schema(
    {
        "name": "devices",
        "key": "id",
        "columns": [
            {"name": "id", "type": "integer", "min": 1},
            {"name": "label", "type": "text", "required": True},
            {"name": "firmware", "type": "decimal"},
        ],
    }
)
DEVICES_HEADER = "id,label,firmware\n"
