// A strict JSON parser for safetensors headers. JSON.parse is too lenient for a file whose
// digest is committed on-chain and which other implementations re-read: it keeps the last of
// duplicate keys (so two readers can disagree about what a file says), accepts lone surrogates,
// and turns 1.5 or 1e400 into numbers a shape check might accept. This parser rejects those and
// bounds nesting, so hostile input can neither recurse deeply nor smuggle in a second meaning.
// Objects come back as Maps, so keys such as "__proto__" are plain data.
import { SafetensorsError } from "./errors.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ESCAPES: Readonly<Record<string, string>> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/** Parses one JSON value (integers only; no duplicate keys; at most `maxDepth` nested containers). */
export function parseHeaderJson(text: string, maxDepth: number): JsonValue {
  const parser = new Parser(text, maxDepth);
  parser.skipSpace();
  const value = parser.value(0);
  parser.skipSpace();
  if (parser.pos !== text.length) parser.fail("end of the header", describe(text, parser.pos));
  return value;
}

function describe(text: string, pos: number): string {
  return pos >= text.length ? "the end of the header" : JSON.stringify(text.slice(pos, pos + 12));
}

class Parser {
  pos = 0;

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {}

  fail(expected: string, found: string): never {
    throw new SafetensorsError("header-syntax", `header is not valid JSON: expected ${expected} at character ${this.pos}, found ${found}`, {
      details: { position: this.pos },
    });
  }

  skipSpace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.pos++;
    }
  }

  value(depth: number): JsonValue {
    const c = this.text[this.pos];
    if (c === "{") return this.object(depth + 1);
    if (c === "[") return this.array(depth + 1);
    if (c === '"') return this.string();
    if (c === "-" || (c >= "0" && c <= "9")) return this.integer();
    for (const [word, value] of [["true", true], ["false", false], ["null", null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    return this.fail("a JSON value", describe(this.text, this.pos));
  }

  private enter(depth: number): void {
    if (depth > this.maxDepth) {
      throw new SafetensorsError("header-too-deep", `header JSON nests ${depth} levels deep at character ${this.pos}; a safetensors header needs at most ${this.maxDepth}`, {
        details: { depth, maxDepth: this.maxDepth, position: this.pos },
      });
    }
    this.pos++;
    this.skipSpace();
  }

  private object(depth: number): JsonObject {
    this.enter(depth);
    const out: JsonObject = new Map();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return out;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') this.fail("a string key", describe(this.text, this.pos));
      const keyAt = this.pos;
      const key = this.string();
      if (out.has(key)) {
        throw new SafetensorsError("duplicate-key", `header JSON repeats the key ${JSON.stringify(key)} (character ${keyAt}); each key must appear once`, {
          details: { key, position: keyAt },
        });
      }
      this.skipSpace();
      if (this.text[this.pos] !== ":") this.fail("':'", describe(this.text, this.pos));
      this.pos++;
      this.skipSpace();
      out.set(key, this.value(depth));
      this.skipSpace();
      const c = this.text[this.pos];
      if (c !== "," && c !== "}") this.fail("',' or '}'", describe(this.text, this.pos));
      this.pos++;
      if (c === "}") return out;
      this.skipSpace();
    }
  }

  private array(depth: number): JsonValue[] {
    this.enter(depth);
    const out: JsonValue[] = [];
    if (this.text[this.pos] === "]") {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth));
      this.skipSpace();
      const c = this.text[this.pos];
      if (c !== "," && c !== "]") this.fail("',' or ']'", describe(this.text, this.pos));
      this.pos++;
      if (c === "]") return out;
      this.skipSpace();
    }
  }

  private string(): string {
    const start = this.pos;
    this.pos++;
    let out = "";
    let runStart = this.pos;
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.fail("a closing '\"'", "the end of the header");
      if (c < 0x20) this.fail("an escaped control character", `code ${c}`);
      if (c === 0x22) break;
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += this.text.slice(runStart, this.pos);
      out += this.escape();
      runStart = this.pos;
    }
    out += this.text.slice(runStart, this.pos);
    this.pos++;
    if (LONE_SURROGATE.test(out)) {
      this.pos = start;
      this.fail("a string of valid Unicode", "an unpaired surrogate escape");
    }
    return out;
  }

  private escape(): string {
    const c = this.text[this.pos + 1];
    if (c === "u") {
      const hex = this.text.slice(this.pos + 2, this.pos + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("four hex digits after \\u", JSON.stringify(hex));
      this.pos += 6;
      return String.fromCharCode(parseInt(hex, 16));
    }
    const replacement = c === undefined ? undefined : ESCAPES[c];
    if (replacement === undefined) this.fail("a JSON escape", describe(this.text, this.pos));
    this.pos += 2;
    return replacement;
  }

  private integer(): number {
    const match = /^-?(?:0|[1-9][0-9]*)/.exec(this.text.slice(this.pos, this.pos + 400));
    if (!match) return this.fail("a number", describe(this.text, this.pos));
    const end = this.pos + match[0].length;
    const next = this.text[end];
    if (next === "." || next === "e" || next === "E" || (next >= "0" && next <= "9")) {
      throw new SafetensorsError("non-integer", `header has a number that is not a plain integer at character ${this.pos}: ${describe(this.text, this.pos)}`, {
        details: { position: this.pos },
      });
    }
    this.pos = end;
    return Number(match[0]);
  }
}
