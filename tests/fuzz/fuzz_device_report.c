/* The device channel's report parser (docs/device-protocol.md §2) on arbitrary
 * bytes: whatever it accepts must satisfy the documented field rules. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "device/device.h"
#include "domain/domain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct device_report r;
	if (device_report_parse((struct str){(const char *)data, size}, &r) == 0) {
		if (!domain_model_valid(str_c(r.model)) || !domain_version_valid(str_c(r.version)))
			abort();
		if (r.ha < DEVICE_HA_UNKNOWN || r.ha > DEVICE_HA_STANDBY)
			abort();
		size_t n = strlen(r.have);
		if (n != 0 && n != DEVICE_CONFIG_VERSION_HEX)
			abort();
		if (r.sls_delivery[0] && strcmp(r.sls_delivery, "delivered") &&
		    strcmp(r.sls_delivery, "not-delivered"))
			abort();
	}
	return 0;
}
