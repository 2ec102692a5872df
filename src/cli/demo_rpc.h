/* A small signed RPC client for `sagflow demo`: the calls a user's SDK makes
 * (V1 HMAC-SHA1, spec smartag-api.md §5.3, every parameter in a form body, as
 * tea-rpc and Terraform send them) over the agent's libcurl transport. The
 * demo provisions through the public API, not the store, so what it sets up
 * is what any client would see.
 *
 *   struct demo_rpc *r = demo_rpc_new("http://127.0.0.1:8080", id, secret);
 *   const char *kv[] = {"Name", "demo", NULL};
 *   json_t *a = demo_rpc_call(r, "DescribeFlowLogs", kv, err, sizeof(err));
 *   json_decref(a); demo_rpc_free(r); */
#ifndef CLI_DEMO_RPC_H
#define CLI_DEMO_RPC_H
#include <jansson.h>
#include <stddef.h>

#define DEMO_RPC_REGION "cn-shanghai"
#define DEMO_RPC_MAX_BODY (1u << 20) /* bytes of an answer */
#define DEMO_RPC_TIMEOUT_MS 10000
#define DEMO_RPC_CONNECT_TIMEOUT_MS 1000

struct demo_rpc;

struct demo_rpc *demo_rpc_new(const char *endpoint, const char *akid, const char *secret);
void demo_rpc_free(struct demo_rpc *r); /* NULL is a no-op */

/* One action with kv = {name, value, ..., NULL} (RegionId is added). Returns
 * the answer's JSON, or NULL with err set: "unreachable: ..." when no answer
 * came (demo_rpc_unreachable tells), else "Code: Message" of the API's error. */
json_t *demo_rpc_call(struct demo_rpc *r, const char *action, const char *const *kv, char *err,
		      size_t errlen);
int demo_rpc_unreachable(const char *err);

#endif
