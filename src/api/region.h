/* Smartag regions (spec §0, §1) and the DescribeRegions action. */
#ifndef API_REGION_H
#define API_REGION_H
#include <stdbool.h>

#include "api/api.h"
#include "core/str.h"

#include "domain/domain.h"

#define REGION_COUNT DOMAIN_REGION_COUNT

/* True when id is one of the Smartag regions (exact, case-sensitive). */
bool region_valid(struct str id);

/* DescribeRegions; terminated by {NULL, NULL}. */
extern const struct api_action region_actions[];

#endif
