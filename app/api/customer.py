"""TMF629 Customer Management v4.0.0."""
from ..resources.service import ResourceKind
from ..schemas import SpecSchemas
from .tmf import resource_blueprint

URL_PREFIX = "/tmf-api/customerManagement/v4"

# The spec's Customer_Update requires engagedParty, which a merge patch (RFC
# 7396, a partial document) cannot: the service never did (partial load), and
# now the document says so too. The merged customer still needs it.
schemas = SpecSchemas("TMF629-Customer-v4.0.0.swagger.json", "TMF629",
                      required_overrides={"Customer_Update": []})

KIND = ResourceKind(
    api="customerManagement", collection="customer", type_name="Customer",
    payload_name="customer", base_path=f"{URL_PREFIX}/customer",
    resource_schema=schemas["Customer"], create_schema=schemas["Customer_Create"],
    update_schema=schemas["Customer_Update"], state_attribute="status",
)

blp = resource_blueprint("customerManagement", KIND, schemas, url_prefix=URL_PREFIX,
                         description="TMF629 Customer Management")
