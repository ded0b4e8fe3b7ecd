/* `rpcall describe` output: a symbol from the descriptor pool printed as
 * .proto source (service, method, message with its nested types, enum,
 * field, enum value), in grpcurl's "X is a message:" style. */
#ifndef RPCALL_DESCRIBE_H
#define RPCALL_DESCRIBE_H

#include <stdio.h>

#include "descpool.h"

/* Prints the symbol; returns 0 or -ENOENT if the pool has no such symbol. */
int describe_symbol(FILE *out, const descpool *pool, const char *name);

#endif
