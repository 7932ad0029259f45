/* Feature: access control over HTTP: sessions, privileges, roles, users,
 * bindings, tokens and the audit log (docs/ACCESS.md, docs/API.md).  Thin
 * handlers over src/engine/auth/, registered as operations. */
#pragma once

#include "dv-core.h"

G_BEGIN_DECLS

void dv_engine_access_register_ops(DvEngine *engine);

G_END_DECLS
