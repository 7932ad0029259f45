/* The OpenAPI 3.1 document of /api/v1, generated from the operation table
 * (dv-op.h; docs/API.md, "The contract").
 *
 * Nothing in it is written by hand: paths and methods are the rows' method
 * and path templates, operationId the row's name, the request body schema
 * its field spec (types, required, limits and enums as the spec declares
 * them), query parameters its query spec, the answer the schema of its
 * shape, the error the daemon's error body, and the privilege an
 * x-drover-privilege extension.  Debug rows are left out: the document is
 * the same whether debug is on or not, so the served one can equal the
 * committed docs/openapi.json (droverd --dump-openapi writes it).
 *
 * Threads: reads the table only (filled before any request), so any
 * thread may call it.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-core-types.h"

G_BEGIN_DECLS

/* The API's version in the document's info.version: the contract's, not
 * the server's, so the committed document changes only with the API. */
#define DV_OPENAPI_API_VERSION "1"

/* The document (owned). */
JsonObject *dv_core_openapi_to_json(DvEngine *engine);

G_END_DECLS
