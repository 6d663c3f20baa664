// Validate an asyncapi.json with AsyncAPI's own parser (@asyncapi/parser): its JSON Schema for
// AsyncAPI 3.0.0 and its Spectral rules. stdin: the document. stdout: {"errors": [...],
// "warnings": [...], "operations": n} (severity 0 is an error, 1 a warning).
import { Parser } from "@asyncapi/parser";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const parser = new Parser();
const { document, diagnostics } = await parser.parse(Buffer.concat(chunks).toString("utf8"));
const show = (d) => `${d.code}: ${d.message} at ${d.path.join(".")}`;
process.stdout.write(
  JSON.stringify({
    errors: diagnostics.filter((d) => d.severity === 0).map(show),
    warnings: diagnostics.filter((d) => d.severity === 1).map(show),
    operations: document ? document.operations().length : null,
    messages: document ? document.messages().length : null,
  }),
);
