/* es_store_pg: the PostgreSQL schema of a shared store (es_store) and its
 * versioned migrations. Only es_store.c calls these. */
#ifndef ES_STORE_PG_H
#define ES_STORE_PG_H

#include "es_sql.h"

#include <stddef.h>

/* 0 if db's schema is ES_STORE_PG_SCHEMA; PX_ERR_VERSION (why says which
 * command fixes it) or another error, with why. */
int es_store_pg_check(struct es_sql *db, char *why, size_t whylen);
/* Applies the missing migrations to db, each in its own transaction under
 * the write lock; *from / *to get the versions before and after. Returns
 * 0, PX_ERR_VERSION (db is newer than this build) or < 0, with why. */
int es_store_pg_migrate(struct es_sql *db, int *from, int *to, char *why, size_t whylen);

#endif
