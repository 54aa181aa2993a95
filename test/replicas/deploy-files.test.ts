/**
 * The deployment files agree with each other and with the code, without Docker (no daemon here: docker-compose.yml and
 * the Dockerfile are not run by the tests): the README shows deploy/nginx.conf verbatim; docker-compose.yml mounts that
 * file into nginx, names the replicas nginx sends to (on the port the image listens on), and gives every service the
 * settings that connect them (names the schema knows, hosts that are its services). No YAML parser is installed:
 * the compose file keeps to a small subset of YAML (block maps and lists of scalars), which readYamlSubset reads and
 * refuses anything beyond.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { settings } from "../../src/config/schema.js";

const root = (file: string): string => fileURLToPath(new URL(`../../${file}`, import.meta.url));

type Yaml = string | null | Yaml[] | { [key: string]: Yaml };

/** Block maps, block lists and scalars (plain or double-quoted), comments; throws on anything else. */
function readYamlSubset(text: string): Yaml {
  const lines = text
    .split("\n")
    .map((raw, index) => ({ number: index + 1, indent: raw.search(/\S/), text: raw.replace(/(^|\s)#.*$/, "").trimEnd() }))
    .filter((line) => line.text.trim() !== "");
  let at = 0;
  const scalar = (value: string, number: number): string => {
    if (/^".*"$/.test(value)) return JSON.parse(value) as string;
    if (/^['[{&*|>!]/.test(value)) throw new Error(`line ${number}: "${value}" is beyond the YAML subset`);
    return value;
  };
  const block = (indent: number): Yaml => {
    const first = lines[at];
    if (first === undefined || first.indent < indent) return null;
    if (first.text.trim().startsWith("- ")) {
      const list: Yaml[] = [];
      while (lines[at]?.indent === first.indent && lines[at]!.text.trim().startsWith("- ")) {
        const line = lines[at++]!;
        list.push(scalar(line.text.trim().slice(2).trim(), line.number));
      }
      return list;
    }
    const map: Record<string, Yaml> = {};
    while (lines[at]?.indent === first.indent) {
      const line = lines[at++]!;
      const match = /^([\w.-]+):(?:\s+(.*))?$/.exec(line.text.trim());
      if (!match) throw new Error(`line ${line.number}: "${line.text.trim()}" is beyond the YAML subset`);
      const [, key = "", value] = match;
      if (key in map) throw new Error(`line ${line.number}: ${key} twice`);
      map[key] = value !== undefined ? scalar(value, line.number) : block(first.indent + 1);
    }
    if (lines[at] !== undefined && lines[at]!.indent > first.indent) throw new Error(`line ${lines[at]!.number}: unexpected indentation`);
    return map;
  };
  const document = block(0);
  if (at !== lines.length) throw new Error(`line ${lines[at]!.number}: unexpected indentation`);
  return document;
}

function map(value: Yaml | undefined, what: string): Record<string, Yaml> {
  assert.ok(value !== null && typeof value === "object" && !Array.isArray(value), `${what} is a map`);
  return value;
}

function list(value: Yaml | undefined, what: string): string[] {
  assert.ok(Array.isArray(value), `${what} is a list`);
  return value.map((item) => String(item));
}

test("the README shows deploy/nginx.conf as it is", async () => {
  const [readme, conf] = await Promise.all([readFile(root("README.md"), "utf8"), readFile(root("deploy/nginx.conf"), "utf8")]);
  assert.ok(readme.includes("```nginx\n" + conf + "```\n"), "README.md has deploy/nginx.conf verbatim in a ```nginx block");
});

test("docker-compose.yml: two replicas behind nginx with deploy/nginx.conf, PostgreSQL 15 and Redis 7, connected by their service names", async () => {
  const [composeText, conf, dockerfile] = await Promise.all([
    readFile(root("docker-compose.yml"), "utf8"),
    readFile(root("deploy/nginx.conf"), "utf8"),
    readFile(root("Dockerfile"), "utf8"),
  ]);
  const services = map(map(readYamlSubset(composeText), "the file").services, "services");
  assert.deepEqual(Object.keys(services).sort(), ["ai-1", "ai-2", "nginx", "postgres", "redis"]);
  assert.equal(map(services.postgres, "postgres").image, "postgres:15");
  assert.equal(map(services.redis, "redis").image, "redis:7");

  const nginx = map(services.nginx, "nginx");
  assert.ok(list(nginx.volumes, "nginx volumes").includes("./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro"));
  const listenPort = /^ENV[\s\S]*?AI_SERVER_HOST=0\.0\.0\.0:(\d+)/m.exec(dockerfile)?.[1];
  assert.ok(listenPort, "the image listens on 0.0.0.0");
  assert.deepEqual(list(nginx.ports, "nginx ports"), [`${listenPort}:80`]);
  assert.match(conf, /^\s*listen 80;$/m, "nginx listens where compose publishes it");

  const upstreams = [...conf.matchAll(/^\s*server ([\w.-]+):(\d+) /gm)].map(([, host, port]) => `${host}:${port}`);
  const replicas = Object.keys(services).filter((name) => name.startsWith("ai-"));
  assert.deepEqual(upstreams, replicas.map((name) => `${name}:${listenPort}`), "nginx sends to the replicas, on the port they listen on");
  assert.deepEqual(list(nginx.depends_on, "nginx depends_on").sort(), replicas);

  const known = new Set<string>(Object.values(settings).map((setting) => setting.env));
  for (const name of replicas) {
    const service = map(services[name], name);
    const env = map(service.environment, `${name} environment`) as Record<string, string>;
    for (const variable of Object.keys(env)) assert.ok(known.has(variable), `${name}: ${variable} is a setting of src/config/schema.ts`);
    assert.equal(env.AI_SERVER_REPLICA_NAME, name);
    assert.match(env.AI_SERVER_ADMIN_KEY ?? "", /^\$\{AI_SERVER_ADMIN_KEY:\?/, "the key comes from the environment, required");
    assert.equal(new URL(env.AI_SERVER_DATABASE_URL!.replace(/\$\{[^}]*\}/g, "secret")).host, "postgres:5432");
    assert.equal(new URL(env.AI_SERVER_REDIS_URL!).hostname, "redis");
    assert.deepEqual(
      env.AI_SERVER_PEERS!.split(",").map((url): string => new URL(url).host),
      replicas.filter((other) => other !== name).map((other): string => `${other}:${listenPort}`),
    );
    assert.ok(list(service.volumes, `${name} volumes`).some((volume) => volume.endsWith(":/data")), "its own data volume at AI_SERVER_HOME");
  }
});

test("the YAML subset reader refuses what it does not read", () => {
  assert.deepEqual(readYamlSubset("a:\n  b: c\n  d:\n    - e\n    - \"f\"\ng:\n"), { a: { b: "c", d: ["e", "f"] }, g: null });
  assert.throws(() => readYamlSubset("a: &anchor x\n"), /beyond the YAML subset/);
  assert.throws(() => readYamlSubset("a: [x, y]\n"), /beyond the YAML subset/);
  assert.throws(() => readYamlSubset("a: x\na: y\n"), /twice/);
});
