// A call the console made, as code a user can paste: a whole pop-core (or
// @alicloud/log) program, and for flow logs the Terraform resource. Secrets
// are never in a snippet: the key comes from environment variables, and no
// parameter the console sends is a secret (the device SecretKey is only ever
// in an answer, never in a request).
import { VERSION } from './api.js';

const ENV_ID = 'ALIBABA_CLOUD_ACCESS_KEY_ID', ENV_SECRET = 'ALIBABA_CLOUD_ACCESS_KEY_SECRET';
const js = (v) => JSON.stringify(v);
const done = '.then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e.code, e.message); process.exitCode = 1; });';

// A runnable Node program: `node -e` it with the two variables set.
export function popCoreSnippet(c, origin = location.origin) {
  if (c.kind === 'sls') {
    const u = new URL(origin);
    return `// npm install @alicloud/log; ${ENV_ID} and ${ENV_SECRET} in the environment\n` +
      `// the client names the project in the Host: ${c.project}.sls.localhost (serve --sls-domain) must reach\n` +
      `// the server (README, "Pointing clients at the log store")\n` +
      `const ALY = require('@alicloud/log');\n` +
      `const client = new ALY({ accessKeyId: process.env.${ENV_ID}, accessKeySecret: process.env.${ENV_SECRET},\n` +
      `  endpoint: ${js(`${u.protocol}//sls.localhost:${u.port || (u.protocol === 'https:' ? 443 : 80)}`)} });\n` +
      `client.getLogs(${js(c.project)}, ${js(c.logstore)}, new Date(${Number(c.params.from) * 1000}), ` +
      `new Date(${Number(c.params.to) * 1000}), ${js({ query: c.params.query, line: c.params.line, offset: c.params.offset, reverse: c.params.reverse })})${done}`;
  }
  return `// npm install @alicloud/pop-core; ${ENV_ID} and ${ENV_SECRET} in the environment\n` +
    `const RPCClient = require('@alicloud/pop-core');\n` +
    `const client = new RPCClient({ accessKeyId: process.env.${ENV_ID}, accessKeySecret: process.env.${ENV_SECRET},\n` +
    `  endpoint: ${js(origin)}, apiVersion: '${VERSION}' });\n` +
    `client.request(${js(c.action)}, ${JSON.stringify(c.params, null, 2)}, { method: 'POST' })${done}`;
}

// The API's parameters and the alicloud_smartag_flow_log arguments they map to
// (terraform-provider-alicloud, alicloud/resource_alicloud_smartag_flow_log.go
// and website/docs/r/smartag_flow_log.html.markdown, available since v1.168.0).
export const TF_ARGS = [['Name', 'flow_log_name'], ['Description', 'description'], ['OutputType', 'output_type'],
  ['SlsRegionId', 'sls_region_id'], ['ProjectName', 'project_name'], ['LogstoreName', 'logstore_name'],
  ['NetflowServerIp', 'netflow_server_ip'], ['NetflowServerPort', 'netflow_server_port'],
  ['NetflowVersion', 'netflow_version'], ['ActiveAging', 'active_aging'], ['InactiveAging', 'inactive_aging'],
  ['Status', 'status']];
const TF_NUMBERS = new Set(['netflow_server_port', 'active_aging', 'inactive_aging']);
// The calls Terraform's resource covers; association has no alicloud resource.
const TF_ACTIONS = { CreateFlowLog: null, ModifyFlowLogAttribute: null, ActiveFlowLog: 'Active', DeactiveFlowLog: 'Inactive' };

export const hasTerraform = (c) => c.kind === 'rpc' && c.action in TF_ACTIONS;

// The flow log as a resource block: from a Describe answer or a call's parameters.
export function terraformSnippet(fl, origin = location.origin, region = 'cn-shanghai') {
  const u = new URL(origin);
  const name = String(fl.Name || fl.FlowLogId || 'flow_log').replace(/[^A-Za-z0-9_]/g, '_').replace(/^[^A-Za-z_]/, '_$&');
  const args = TF_ARGS.filter(([k]) => fl[k] !== undefined && fl[k] !== null && fl[k] !== '')
    .map(([k, a]) => `  ${a.padEnd(19)} = ${TF_NUMBERS.has(a) ? Number(fl[k]) : js(String(fl[k]))}`);
  return `# ALICLOUD_ACCESS_KEY and ALICLOUD_SECRET_KEY in the environment\n` +
    `provider "alicloud" {\n  region                 = ${js(region)}\n` +
    `  protocol               = ${js(u.protocol === 'https:' ? 'HTTPS' : 'HTTP')}\n  skip_region_validation = true\n` +
    `  endpoints { smartag = ${js(u.host)} }\n}\n\n` +
    `resource "alicloud_smartag_flow_log" ${js(name)} {\n${args.join('\n')}\n}\n` +
    (fl.FlowLogId ? `# existing: terraform import alicloud_smartag_flow_log.${name} ${fl.FlowLogId}\n` : '');
}

// A flow-log call as Terraform: the status calls become `status`.
export function callTerraform(c) {
  const status = TF_ACTIONS[c.action];
  const tf = terraformSnippet(status ? { FlowLogId: c.params.FlowLogId, Status: status } : c.params, location.origin, c.params.RegionId);
  return c.action === 'ModifyFlowLogAttribute' ? `# the arguments this call changed; the flow log's page has the whole resource\n${tf}` : tf;
}
