/* The gateway (SAG instance) actions of spec §4.2 and the serial-number
 * binding that gives each device its SecretKey for the device channel. */
#ifndef API_GATEWAY_H
#define API_GATEWAY_H
#include "api/api.h"

extern const struct api_action gateway_actions[]; /* NULL-terminated */

#endif
