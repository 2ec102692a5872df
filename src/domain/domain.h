/* The rules of flow logs, gateways and devices (spec §2, §3, §4, §10), pure
 * functions over value types: no store, no HTTP. The action layer parses
 * parameters into a struct flowlog_patch, applies it with flowlog_apply(),
 * and asks assoc_check() whether a gateway may be bound; the store runs the
 * same checks again inside its write transaction so they are check-and-set. */
#ifndef DOMAIN_DOMAIN_H
#define DOMAIN_DOMAIN_H
#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "rpc/errors.h"

/* Limits of stored strings, in bytes (each buffer holds one more for the NUL). */
#define DOMAIN_ID_MAX 32           /* "fl-"/"sag-" + 18, "rg-" ids */
#define DOMAIN_REGION_MAX 64
#define DOMAIN_NAME_MAX 128        /* characters; bytes are bounded by 4x that */
#define DOMAIN_NAME_BYTES (DOMAIN_NAME_MAX * 4)
#define DOMAIN_DESC_MAX 256        /* characters */
#define DOMAIN_DESC_BYTES (DOMAIN_DESC_MAX * 4)
/* After a change takes a flow log's Log Service target away, its devices may
 * still PutLogs there this long: the records they closed under the old
 * configuration (docs/device-protocol.md §8). */
#define DOMAIN_SLS_GRACE_MS (10 * 60 * 1000LL)
#define DOMAIN_SLS_NAME_MAX 128    /* a stored ProjectName / LogstoreName (older rows) */
#define DOMAIN_SLS_NAME_MIN 3      /* ... and what Log Service naming accepts now */
#define DOMAIN_SLS_NAME_LEN 63
#define DOMAIN_IP_MAX 45           /* INET6_ADDRSTRLEN - 1 */
#define DOMAIN_SN_MAX 64           /* device serial number */
#define DOMAIN_VERSION_MAX 32      /* firmware version string */
#define DOMAIN_MODEL_MAX 32
#define DOMAIN_SECRET_LEN 32       /* device SecretKey, [A-Za-z0-9] */
/* A gateway device signs its Log Service requests (PutLogs) with the
 * AccessKeyId "<prefix><serial number>" and its SecretKey as the secret
 * (docs/device-protocol.md §8). No AccessKey may start with the prefix
 * (store_key_insert refuses one), so the two kinds never collide. */
#define DOMAIN_DEVICE_KEY_PREFIX "device."
#define DOMAIN_MAX_DEVICES 2       /* one for no_backup, two for an HA pair */
#define DOMAIN_SLS_DELIVERY_MAX 15 /* a device's SlsDelivery: "", "delivered", "not-delivered" */
#define DOMAIN_SLS_ERROR_MAX 255    /* bytes of a device's reported last Log Service error */
#define DOMAIN_SLS_COUNT_MAX 9007199254740991LL /* 2^53 - 1: a reported count, exact in JSON */

#define FLOWLOG_ACTIVE_AGING_MIN 60
#define FLOWLOG_ACTIVE_AGING_MAX 6000
#define FLOWLOG_ACTIVE_AGING_DEFAULT 300
#define FLOWLOG_INACTIVE_AGING_MIN 10
#define FLOWLOG_INACTIVE_AGING_MAX 600
#define FLOWLOG_INACTIVE_AGING_DEFAULT 15
#define FLOWLOG_PORT_DEFAULT 9995
#define FLOWLOG_PAGE_SIZE_DEFAULT 10
#define FLOWLOG_PAGE_SIZE_MAX 100 /* Terraform sends 50; accept more, bounded */
#define SAG_PAGE_SIZE_MAX 50      /* spec §3.9, §4.1 */
#define DOMAIN_PAGE_NUMBER_MAX 1000000

/* Flow logs need SAG-1000 at this firmware or later (spec §4.3). */
#define DOMAIN_FLOWLOG_MIN_FIRMWARE "1.7.0"

enum flowlog_status { FLOWLOG_ACTIVE, FLOWLOG_INACTIVE };
enum flowlog_output { FLOWLOG_OUT_SLS, FLOWLOG_OUT_NETFLOW, FLOWLOG_OUT_ALL };
enum netflow_version { NETFLOW_NONE, NETFLOW_V5, NETFLOW_V9, NETFLOW_V10 };

struct flowlog {
	int64_t rowid; /* the store's key; 0 until stored */
	char id[DOMAIN_ID_MAX + 1];
	char region_id[DOMAIN_REGION_MAX + 1];
	char resource_group_id[DOMAIN_ID_MAX + 1];
	char name[DOMAIN_NAME_BYTES + 1];
	char description[DOMAIN_DESC_BYTES + 1];
	enum flowlog_status status;
	enum flowlog_output output;
	char sls_region_id[DOMAIN_REGION_MAX + 1];
	char project_name[DOMAIN_SLS_NAME_MAX + 1];
	char logstore_name[DOMAIN_SLS_NAME_MAX + 1];
	char netflow_server_ip[DOMAIN_IP_MAX + 1];
	int netflow_server_port; /* 0 = not set */
	enum netflow_version netflow_version;
	int active_aging, inactive_aging;
	int64_t total_sag_num; /* derived by the store, never written */
	int64_t account_id;
	int64_t created_ms;
	/* The Log Service target before the last change that took it away, and
	 * until when devices may still write there (wall-clock ms; 0 = none).
	 * Set by the store on update, never by the API. */
	char sls_prev_project[DOMAIN_SLS_NAME_MAX + 1];
	char sls_prev_logstore[DOMAIN_SLS_NAME_MAX + 1];
	int64_t sls_prev_until_ms;
};

/* One optional request parameter: absent, or present with a (maybe empty) value. */
struct opt {
	bool set;
	struct str v;
};

/* The parameters of CreateFlowLog / ModifyFlowLogAttribute. */
struct flowlog_patch {
	struct opt name, description, output_type, active_aging, inactive_aging;
	struct opt sls_region_id, project_name, logstore_name;
	struct opt netflow_server_ip, netflow_server_port, netflow_version;
};

const char *flowlog_status_name(enum flowlog_status s);
const char *flowlog_output_name(enum flowlog_output o);
const char *netflow_version_name(enum netflow_version v); /* "" for NONE */
int flowlog_status_parse(struct str s, enum flowlog_status *out);
int flowlog_output_parse(struct str s, enum flowlog_output *out);
int netflow_version_parse(struct str s, enum netflow_version *out);

/* Fills fl with a new flow log's defaults (Active, agings 300/15, port 9995, V9). */
void flowlog_init(struct flowlog *fl);
/* Validates p and applies it to fl: create=true for CreateFlowLog (OutputType
 * required, absent port/version keep their defaults), false for a partial
 * Modify (an empty string clears a field). On error fl may be half-updated:
 * apply to a copy. Checks, in order: OutputType, ActiveAging, InactiveAging,
 * NetflowVersion, NetflowServerPort, NetflowServerIp, SlsRegionId (one of the
 * regions), ProjectName, LogstoreName (Log Service naming), the name and
 * description (InvalidParameter naming the parameter in detail), then the
 * MissingParam.* rules of the result. */
enum err flowlog_apply(struct flowlog *fl, const struct flowlog_patch *p, bool create, char *detail,
		       size_t detail_cap);
/* Whether the flow log's OutputType sends to a NetFlow collector. */
bool flowlog_exports_netflow(const struct flowlog *fl);

/* ActiveFlowLog / DeactiveFlowLog: idempotent (spec §10). */
enum flowlog_status flowlog_transition(enum flowlog_status cur, bool activate);
/* DeleteFlowLog: refused while any gateway is bound. */
enum err flowlog_delete_check(const struct flowlog *fl);

/* Gateways (SAG instances) and their devices. */
enum sag_spec { SAG_SPEC_1000, SAG_SPEC_100WM, SAG_SPEC_VCPE };
enum sag_ha { SAG_HA_NONE, SAG_HA_COLD, SAG_HA_WARM };
enum device_ha { DEVICE_HA_UNKNOWN, DEVICE_HA_ACTIVE, DEVICE_HA_STANDBY };

/* What a device reports about its Log Service delivery (docs/device-protocol.md
 * §2, SlsStats): records delivered, waiting and dropped since its spool began,
 * and the last error with its wall-clock time (0 = none). */
struct device_sls_stats {
	int64_t delivered, queued, dropped;
	char last_error[DOMAIN_SLS_ERROR_MAX + 1];
	int64_t last_error_ms;
};

struct device {
	char serial_number[DOMAIN_SN_MAX + 1];
	char secret_key[DOMAIN_SECRET_LEN + 1];
	char model[DOMAIN_MODEL_MAX + 1];               /* as reported; "" never reported */
	char software_version[DOMAIN_VERSION_MAX + 1]; /* as reported; "" never reported */
	enum device_ha ha_state;
	int64_t reported_ms; /* 0 = never */
	char sls_delivery[DOMAIN_SLS_DELIVERY_MAX + 1]; /* as reported: "", "delivered", "not-delivered" */
	int64_t last_sequence; /* the highest X-Sag-Sequence accepted; 0 none */
	struct device_sls_stats sls; /* as reported; all zero when never */
};

struct sag {
	int64_t rowid; /* the store's key; 0 until stored */
	char id[DOMAIN_ID_MAX + 1];
	char region_id[DOMAIN_REGION_MAX + 1];
	char resource_group_id[DOMAIN_ID_MAX + 1];
	char name[DOMAIN_NAME_BYTES + 1];
	char description[DOMAIN_DESC_BYTES + 1];
	enum sag_spec spec;
	enum sag_ha ha;
	int max_bandwidth;
	char flowlog_id[DOMAIN_ID_MAX + 1]; /* "" = not bound */
	int ndevices;
	struct device devices[DOMAIN_MAX_DEVICES];
	int64_t account_id;
	int64_t created_ms;
};

const char *sag_spec_name(enum sag_spec s);
int sag_spec_parse(struct str s, enum sag_spec *out);
const char *sag_ha_name(enum sag_ha h);
int sag_ha_parse(struct str s, enum sag_ha *out);
const char *device_ha_name(enum device_ha h); /* "" for UNKNOWN */
int device_ha_parse(struct str s, enum device_ha *out);
/* How many devices the gateway's HA type allows. */
int sag_max_devices(const struct sag *g);

/* A device counts as online for this long after its last report, by default
 * (`serve --device-offline-after` sets it between the bounds). */
#define DEVICE_ONLINE_MS (90 * 1000)
#define DEVICE_ONLINE_MIN_MS 3000 /* devices poll at least every second, reports are stored every third of it */
#define DEVICE_ONLINE_MAX_MS (86400 * 1000)
/* The instance Status shown by Describe*: Init (no device reported yet),
 * Active (a device reported within online_ms), else Offline. */
const char *sag_status(const struct sag *g, int64_t now_ms, int64_t online_ms);
/* The active device of the gateway (the one reporting HA state active, else the
 * only or first device) and the other one (NULL when there is none). */
const struct device *sag_active_device(const struct sag *g);
const struct device *sag_standby_device(const struct sag *g);

/* For binding flow log fl to gateway g (both exist and belong to the caller):
 * first the status rule of §10 (an Inactive flow log → IncorrectStatus), then
 * steps 5–7 of spec §3.7 (model, firmware, already bound elsewhere).
 * Returns ERR_OK also when g is already bound to fl (idempotent). */
enum err assoc_check(const struct flowlog *fl, const struct sag *g);
/* Steps 5–6 only: whether g's model and firmware can run flow logs. */
enum err sag_firmware_check(const struct sag *g);

/* Field syntax. Each returns true when s is acceptable. */
bool domain_name_valid(struct str s);        /* 2-128 chars, starts with a letter */
bool domain_description_valid(struct str s); /* 0-256 chars, no control chars */
bool domain_region_syntax(struct str s);     /* "cn-shanghai"-like */
bool domain_region_known(struct str s);      /* one of the regions of DescribeRegions */
bool domain_ip_valid(struct str s);          /* IPv4 or IPv6 literal */
/* Log Service naming (issue 10): a project is 3-63 of [a-z0-9-], a logstore
 * 3-63 of [a-z0-9_-]; neither starts nor ends with '-'. */
bool domain_sls_project_valid(struct str s);
bool domain_sls_logstore_valid(struct str s);
bool domain_serial_valid(struct str s);      /* [A-Za-z0-9_-], 1-64 */
bool domain_version_valid(struct str s);     /* digits and dots, comparable */
bool domain_model_valid(struct str s);       /* [a-z0-9-], 1-32 */

/* The Smartag regions (spec §0, §1), in the order the product's docs list
 * them: DescribeRegions renders them, RegionId and SlsRegionId must be one. */
#define DOMAIN_REGION_COUNT 10
extern const char *const domain_region_ids[DOMAIN_REGION_COUNT];

/* Copies s into a NUL-terminated buffer of cap bytes; -1 if it does not fit. */
int domain_copy(char *dst, size_t cap, struct str s);

#endif
