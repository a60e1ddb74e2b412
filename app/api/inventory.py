"""TMF637 Product Inventory v4.0.0: what a customer owns, read by the rules."""
from ..resources.service import ResourceKind
from ..schemas import SpecSchemas
from .tmf import resource_blueprint

URL_PREFIX = "/tmf-api/productInventory/v4"

schemas = SpecSchemas("TMF637-ProductInventory-v4.0.0.swagger.json", "TMF637")

KIND = ResourceKind(
    api="productInventory", collection="product", type_name="Product",
    payload_name="product", base_path=f"{URL_PREFIX}/product",
    resource_schema=schemas["Product"], create_schema=schemas["Product_Create"],
    update_schema=schemas["Product_Update"], state_attribute="status",
)

blp = resource_blueprint("productInventory", KIND, schemas, url_prefix=URL_PREFIX,
                         description="TMF637 Product Inventory")
