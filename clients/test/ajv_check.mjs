// Compile a schema.json with ajv 8 in strict mode (JSON Schema 2020-12, ajv-formats, no added
// keywords), then validate payloads against refs into it.
// stdin: {"schema": {...}, "cases": [{"ref": "#/$defs/X", "payload": ...}, ...]}
// stdout: {"compiled": true, "results": [true, false, ...]} or {"compiled": false, "error": "..."}
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { schema, cases } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const ajv = new Ajv2020.default({ strict: true, allErrors: true });
addFormats.default(ajv);
let out;
try {
  ajv.addSchema(schema);
  ajv.compile(schema);
  const results = (cases ?? []).map(({ ref, payload }) => {
    const validate = ajv.getSchema(schema.$id + ref);
    if (!validate) throw new Error(`no schema at ${ref}`);
    return validate(payload);
  });
  out = { compiled: true, results };
} catch (error) {
  out = { compiled: false, error: String(error.message ?? error) };
}
process.stdout.write(JSON.stringify(out));
