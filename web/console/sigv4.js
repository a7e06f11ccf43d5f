// sigv4.js — AWS Signature Version 4 for requests a page sends with fetch,
// with the browser's WebCrypto (HMAC-SHA256, SHA-256).
//
// The console signs its ivs-realtime API requests with it, so that the
// server checks them as it checks the AWS CLI's and SDKs': one way in.
//
//   const signed = await signRequest({
//     method: "POST", url: location.origin + "/ListStages", body: "{}",
//     region: "us-east-1", service: "ivs", accessKeyId, secretAccessKey,
//   });
//   await fetch(url, { method: "POST", headers: { ...signed.headers, "Content-Type": "application/json" }, body: "{}" });
//
// The Host header is signed with the URL's host, which is what the browser
// sends. Other headers are signed only when passed in `headers`: a header
// the browser may rewrite (Content-Type) is safer left unsigned.
//
// WebCrypto exists only in secure contexts (https, localhost); a page
// served over plain http from another address gets the same hashes from
// the small SHA-256 below.

const algorithm = "AWS4-HMAC-SHA256";
const encoder = new TextEncoder();

/**
 * Signs a request.
 * @param {object} req
 * @param {string} req.method
 * @param {string} req.url  absolute URL, as the request will be sent
 * @param {Object<string,string>} [req.headers]  headers to sign and send (not Host)
 * @param {string|Uint8Array} [req.body]
 * @param {string} req.region
 * @param {string} [req.service="ivs"]
 * @param {string} req.accessKeyId
 * @param {string} req.secretAccessKey
 * @param {string} [req.sessionToken]
 * @param {Date} [req.date]  the signing time, now by default
 * @param {boolean} [req.webCrypto]  false to hash without WebCrypto (it is used when present)
 * @returns {Promise<{headers: Object<string,string>, canonicalRequest: string, stringToSign: string, signature: string}>}
 *   headers: what to send: the given headers, X-Amz-Date, X-Amz-Security-Token (with a session token) and Authorization
 */
export async function signRequest(req) {
  const url = new URL(req.url);
  const { digest, hmac } = req.webCrypto !== false && globalThis.crypto && crypto.subtle ? webCrypto : pureJS;
  const service = req.service || "ivs";
  const amzDate = formatDate(req.date || new Date());
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${req.region}/${service}/aws4_request`;

  const headers = { ...(req.headers || {}) };
  headers["X-Amz-Date"] = amzDate;
  if (req.sessionToken) headers["X-Amz-Security-Token"] = req.sessionToken;

  // Canonical headers: lower-case names, sorted; values trimmed, inner
  // runs of spaces made one; repeated names joined with commas.
  const canon = new Map([["host", url.host]]);
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase();
    const v = String(value).trim().replace(/ +/g, " ");
    canon.set(key, canon.has(key) ? canon.get(key) + "," + v : v);
  }
  const names = [...canon.keys()].sort();
  const signedHeaders = names.join(";");
  const canonicalHeaders = names.map((n) => `${n}:${canon.get(n)}\n`).join("");

  const body = req.body == null ? "" : req.body;
  const payloadHash = hex(await digest(typeof body === "string" ? encoder.encode(body) : body));
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalURI(url.pathname),
    canonicalQuery(url.search),
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join("\n");
  const stringToSign = [
    algorithm,
    amzDate,
    scope,
    hex(await digest(encoder.encode(canonicalRequest))),
  ].join("\n");

  let key = encoder.encode("AWS4" + req.secretAccessKey);
  for (const part of [day, req.region, service, "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, stringToSign));

  headers.Authorization = `${algorithm} Credential=${req.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { headers, canonicalRequest, stringToSign, signature };
}

// formatDate gives the basic ISO 8601 form SigV4 uses: 20261124T100000Z.
function formatDate(d) {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
}

// canonicalURI escapes the path as it is sent (already percent-encoded)
// once more: every service but S3 signs the path encoded twice.
function canonicalURI(path) {
  return encodeRFC3986(path || "/", true);
}

// canonicalQuery decodes the query string's pairs, encodes them again,
// and sorts them by encoded name, then encoded value.
function canonicalQuery(search) {
  const pairs = [];
  for (const part of search.replace(/^\?/, "").split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "" : part.slice(eq + 1);
    pairs.push([encodeRFC3986(decodeQuery(name), false), encodeRFC3986(decodeQuery(value), false)]);
  }
  // Encoded, they are ASCII: code unit order is byte order.
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => n + "=" + v).join("&");
}

function decodeQuery(s) {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

// encodeRFC3986 percent-encodes every byte but the unreserved characters
// (A-Z a-z 0-9 - . _ ~), and "/" when keepSlash is set.
function encodeRFC3986(s, keepSlash) {
  let out = "";
  for (const b of encoder.encode(s)) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

// Hashing: SHA-256 of bytes, HMAC-SHA256 of a string under a key.
const webCrypto = {
  digest: async (data) => new Uint8Array(await crypto.subtle.digest("SHA-256", data)),
  hmac: async (key, data) => {
    const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return new Uint8Array(await crypto.subtle.sign("HMAC", k, encoder.encode(data)));
  },
};

const pureJS = {
  digest: async (data) => sha256(data),
  hmac: async (key, data) => hmacSHA256(key, encoder.encode(data)),
};

// SHA-256 (FIPS 180-4), for pages without WebCrypto.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const ror = (x, n) => (x >>> n) | (x << (32 - n));

/** SHA-256 of bytes, without WebCrypto. */
export function sha256(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const n = Math.ceil((bytes.length + 9) / 64) * 64;
  const buf = new Uint8Array(n);
  buf.set(bytes);
  buf[bytes.length] = 0x80;
  const dv = new DataView(buf.buffer);
  const bits = bytes.length * 8;
  dv.setUint32(n - 8, Math.floor(bits / 2 ** 32));
  dv.setUint32(n - 4, bits >>> 0);
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const W = new Uint32Array(64);
  for (let off = 0; off < n; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = dv.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = ror(W[i - 15], 7) ^ ror(W[i - 15], 18) ^ (W[i - 15] >>> 3);
      const s1 = ror(W[i - 2], 17) ^ ror(W[i - 2], 19) ^ (W[i - 2] >>> 10);
      W[i] = W[i - 16] + s0 + W[i - 7] + s1;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const t2 = ((ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    H[0] += a;
    H[1] += b;
    H[2] += c;
    H[3] += d;
    H[4] += e;
    H[5] += f;
    H[6] += g;
    H[7] += h;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  H.forEach((v, i) => ov.setUint32(4 * i, v));
  return out;
}

/** HMAC-SHA256 (RFC 2104), without WebCrypto. */
export function hmacSHA256(key, data) {
  const k = key.length > 64 ? sha256(key) : key;
  const padded = new Uint8Array(64);
  padded.set(k);
  const inner = new Uint8Array(64 + data.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    inner[i] = padded[i] ^ 0x36;
    outer[i] = padded[i] ^ 0x5c;
  }
  inner.set(data, 64);
  outer.set(sha256(inner), 64);
  return sha256(outer);
}

function hex(buf) {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
