// player.js — plays a participant recording (HLS of fMP4 segments, as the
// server writes it) in a <video> with Media Source Extensions: the
// multivariant playlist gives the codecs, the media playlist the init
// segment and the segments, which are appended in order to one
// SourceBuffer. It reads each object through a function it is given, so
// that the console signs those reads as it signs API calls.
//
// Only what a recording holds is supported: one rendition, one init
// segment (EXT-X-MAP), segments listed once. A recording still going on,
// or one that failed, plays what its playlist lists so far.
//
//   const player = playRecording(video, (key) => getObjectBytes(bucket, prefix + key), {
//     onStatus: (text, state) => ...,
//   });
//   player.stop();

// The keys under a recording's prefix.
export const multivariantKey = "media/hls/multivariant.m3u8";

// How much of what was played is kept before the play position when the
// SourceBuffer is full.
const keepBehindSeconds = 10;

// A segment after a discontinuity whose media time is within this of
// where the playlist puts it keeps the time it has: the recording's
// timeline goes on (ivsrt's do), and moving it by rounding errors would
// overlap or part frames at the boundary.
const alignTolerance = 0.1;

// Holes in what is buffered up to this long are jumped over, as a
// browser stalls at them: a frame missing at a boundary, a recording's
// tracks not ending together.
const maxGap = 0.5;

/**
 * Parses an attribute list (RFC 8216, section 4.2): NAME=value pairs,
 * separated by commas, the values quoted strings or not.
 * @param {string} s
 * @returns {Object<string,string>}
 */
export function parseAttributes(s) {
  const out = {};
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)(?:,|$)/g;
  let m;
  while ((m = re.exec(s)) !== null) {
    if (m[0] === "") break;
    let v = m[2];
    if (v.startsWith('"')) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

function lines(text) {
  const all = String(text).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  if (all[0] !== "#EXTM3U") throw new Error("not an HLS playlist (no #EXTM3U)");
  return all;
}

/**
 * Reads a multivariant playlist: its first variant's URI, codecs and
 * resolution.
 * @param {string} text
 * @returns {{uri: string, codecs: string[], width: number, height: number}}
 */
export function parseMultivariant(text) {
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    if (!ls[i].startsWith("#EXT-X-STREAM-INF:")) continue;
    const attrs = parseAttributes(ls[i].slice("#EXT-X-STREAM-INF:".length));
    const uri = ls.slice(i + 1).find((l) => !l.startsWith("#"));
    if (!uri) throw new Error("the multivariant playlist's variant has no URI");
    const [width, height] = (attrs.RESOLUTION || "").split("x").map((n) => parseInt(n, 10) || 0);
    const codecs = (attrs.CODECS || "").split(",").map((c) => c.trim()).filter((c) => c !== "");
    return { uri, codecs, width: width || 0, height: height || 0 };
  }
  throw new Error("the multivariant playlist has no variant");
}

/**
 * Reads a media playlist: its segments, each with its URI, duration,
 * start (the durations of those before it), init segment (the EXT-X-MAP
 * in effect) and whether a discontinuity comes before it; and whether it
 * is complete (EXT-X-ENDLIST). A recording whose publisher changed its
 * parameter sets, or came back after a break, has a new init segment or
 * a discontinuity where it did.
 * @param {string} text
 * @returns {{segments: {uri: string, duration: number, start: number, map: string, discontinuity: boolean}[],
 *   ended: boolean, duration: number}}
 */
export function parseMediaPlaylist(text) {
  const ls = lines(text);
  const out = { segments: [], ended: false, duration: 0 };
  let duration = -1;
  let map = "";
  let discontinuity = false;
  for (const l of ls) {
    if (l.startsWith("#EXT-X-MAP:")) {
      map = parseAttributes(l.slice("#EXT-X-MAP:".length)).URI || "";
      if (!map) throw new Error("an #EXT-X-MAP has no URI: " + l);
    } else if (l === "#EXT-X-DISCONTINUITY") {
      discontinuity = true;
    } else if (l.startsWith("#EXTINF:")) {
      duration = parseFloat(l.slice("#EXTINF:".length));
      if (!(duration >= 0)) throw new Error("a segment's #EXTINF has no duration: " + l);
    } else if (l === "#EXT-X-ENDLIST") {
      out.ended = true;
    } else if (!l.startsWith("#")) {
      if (duration < 0) throw new Error("segment " + l + " has no #EXTINF");
      if (!map) throw new Error("segment " + l + " has no init segment (#EXT-X-MAP)");
      out.segments.push({ uri: l, duration, start: out.duration, map, discontinuity });
      out.duration += duration;
      duration = -1;
      discontinuity = false;
    }
  }
  return out;
}

/**
 * Resolves a playlist's relative URI against the key of the playlist,
 * keeping to the recording: no absolute URL, no path from the root, no
 * "." or ".." part.
 * @param {string} base  the playlist's key, as "media/hls/multivariant.m3u8"
 * @param {string} uri
 * @returns {string} the key of what uri names
 */
export function resolveKey(base, uri) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) || uri.startsWith("/") || /[?#\\]/.test(uri)) {
    throw new Error("the playlist names " + JSON.stringify(uri) + ", outside the recording");
  }
  const parts = uri.split("/");
  if (parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new Error("the playlist names " + JSON.stringify(uri) + ", outside the recording");
  }
  return base.slice(0, base.lastIndexOf("/") + 1) + uri;
}

/**
 * The MIME type of a SourceBuffer for the codecs of a variant: video/mp4
 * when one is a video codec, audio/mp4 for audio alone.
 * @param {string[]} codecs
 * @returns {string}
 */
export function mimeType(codecs) {
  if (!codecs.length) throw new Error("the multivariant playlist does not say the recording's codecs (CODECS)");
  const video = codecs.some((c) => /^(avc[13]|hvc1|hev1|vp09|av01)\b/.test(c));
  return `${video ? "video" : "audio"}/mp4; codecs="${codecs.join(",")}"`;
}

/**
 * Returns where the media of a segment starts, in seconds: the earliest
 * base media decode time (tfdt) of its track fragments, each in the
 * timescale its track has in the init segment (mdhd). ISO/IEC 14496-12,
 * sections 8.3.2 (tkhd), 8.4.2 (mdhd), 8.8.7 (tfhd) and 8.8.12 (tfdt).
 * A recording's media starts when its first keyframe came, not at 0.
 * @param {ArrayBuffer} init
 * @param {ArrayBuffer} segment
 * @returns {number} seconds, or 0 when the boxes do not say
 */
export function mediaStart(init, segment) {
  const timescales = new Map(); // by track id
  const iv = new DataView(init);
  for (const trak of children(iv, iv, "moov", "trak")) {
    const tkhd = child(iv, trak, "tkhd");
    const mdhd = child(iv, child(iv, trak, "mdia"), "mdhd");
    if (!tkhd || !mdhd) continue;
    const id = iv.getUint32(tkhd.start + (iv.getUint8(tkhd.start) === 1 ? 20 : 12));
    const timescale = iv.getUint32(mdhd.start + (iv.getUint8(mdhd.start) === 1 ? 20 : 12));
    if (timescale) timescales.set(id, timescale);
  }
  const sv = new DataView(segment);
  let start = Infinity;
  for (const traf of children(sv, sv, "moof", "traf")) {
    const tfhd = child(sv, traf, "tfhd");
    const tfdt = child(sv, traf, "tfdt");
    const timescale = tfhd && timescales.get(sv.getUint32(tfhd.start + 4));
    if (!tfdt || !timescale) continue;
    const t = sv.getUint8(tfdt.start) === 1 ? Number(sv.getBigUint64(tfdt.start + 4)) : sv.getUint32(tfdt.start + 4);
    start = Math.min(start, t / timescale);
  }
  return Number.isFinite(start) ? start : 0;
}

// boxes lists the boxes of view between start and end: their type and
// where their content is.
function boxes(view, start, end) {
  const out = [];
  for (let off = start; off + 8 <= end;) {
    let size = view.getUint32(off);
    const type = String.fromCharCode(view.getUint8(off + 4), view.getUint8(off + 5), view.getUint8(off + 6), view.getUint8(off + 7));
    let header = 8;
    if (size === 1) {
      if (off + 16 > end) break;
      size = Number(view.getBigUint64(off + 8));
      header = 16;
    } else if (size === 0) {
      size = end - off;
    }
    if (size < header || off + size > end) break;
    out.push({ type, start: off + header, end: off + size });
    off += size;
  }
  return out;
}

// child returns the first box of type in parent (a box, or a DataView for
// the top level), or null.
function child(view, parent, type) {
  if (!parent) return null;
  const [start, end] = parent instanceof DataView ? [0, parent.byteLength] : [parent.start, parent.end];
  return boxes(view, start, end).find((b) => b.type === type) || null;
}

// children returns the boxes of type inside every top-level box of outer.
function children(view, top, outer, type) {
  return boxes(view, 0, top.byteLength).filter((b) => b.type === outer)
    .flatMap((b) => boxes(view, b.start, b.end).filter((c) => c.type === type));
}

/**
 * Returns where to jump to get over a hole in what is buffered: the start
 * of the next buffered range, when t is in a hole, or at the end of a
 * range (where playing stalls), and the next range is less than maxGap
 * away; or -1.
 * @param {number[][]} ranges  buffered [start, end] pairs, in order
 * @param {number} t  the play position
 * @returns {number}
 */
export function gapAhead(ranges, t) {
  const nearEnd = 0.25;
  for (let i = 0; i < ranges.length; i++) {
    const [start, end] = ranges[i];
    if (t < start) return start - t <= maxGap ? start : -1; // in a hole
    if (t < end - nearEnd) return -1; // well inside a range
    const next = ranges[i + 1];
    if (t <= end && next && next[0] - end <= maxGap) return next[0];
  }
  return -1;
}

/**
 * Counts the segments a recording's media playlist lists: 0 when it has
 * no playlists (a recording that failed before its first media).
 * @param {(key: string) => Promise<ArrayBuffer>} load  as for playRecording
 * @param {(err: Error) => boolean} missing  whether an error of load is a missing object
 * @returns {Promise<number>}
 */
export async function recordedSegments(load, missing) {
  const text = async (key) => new TextDecoder().decode(await load(key));
  try {
    const variant = parseMultivariant(await text(multivariantKey));
    return parseMediaPlaylist(await text(resolveKey(multivariantKey, variant.uri))).segments.length;
  } catch (err) {
    if (missing(err)) return 0;
    throw err;
  }
}

/**
 * Plays the recording whose objects load(key) reads (an ArrayBuffer, for
 * a key under the recording's prefix) in video.
 * @param {HTMLVideoElement} video
 * @param {(key: string) => Promise<ArrayBuffer>} load
 * @param {object} [opts]
 * @param {(text: string, state: string) => void} [opts.onStatus]  told of progress; state is
 *   "loading", "playing", "done" (everything appended) or "error"
 * @returns {{stop: () => void, done: Promise<void>, info: object}}
 */
export function playRecording(video, load, opts = {}) {
  const onStatus = opts.onStatus || (() => {});
  const status = (text, state) => {
    if (!stopped) onStatus(text, state);
  };
  const info = { type: "", width: 0, height: 0, segments: 0, appended: 0, duration: 0, ended: false, start: 0 };
  let stopped = false;
  const ms = new MediaSource();
  const url = URL.createObjectURL(ms);
  video.src = url;

  const gapWatch = setInterval(() => {
    if (video.paused || video.seeking || video.ended || video.readyState >= HTMLMediaElement.HAVE_FUTURE_DATA) return;
    const ranges = [];
    for (let i = 0; i < video.buffered.length; i++) ranges.push([video.buffered.start(i), video.buffered.end(i)]);
    const to = gapAhead(ranges, video.currentTime);
    if (to >= 0) video.currentTime = to;
  }, 250);
  const text = async (key) => new TextDecoder().decode(await load(key));
  const check = () => {
    if (stopped) throw new StoppedError();
  };

  const done = (async () => {
    status("Reading the playlists…", "loading");
    await once(ms, "sourceopen");
    const variant = parseMultivariant(await text(multivariantKey));
    check();
    const playlistKey = resolveKey(multivariantKey, variant.uri);
    const media = parseMediaPlaylist(await text(playlistKey));
    check();
    info.type = mimeType(variant.codecs);
    info.width = variant.width;
    info.height = variant.height;
    info.segments = media.segments.length;
    info.duration = media.duration;
    info.ended = media.ended;
    if (!media.segments.length) throw new Error("the recording has no segment");
    if (!MediaSource.isTypeSupported(info.type)) throw new Error(`this browser cannot play ${info.type}`);
    const sb = ms.addSourceBuffer(info.type);
    ms.duration = media.duration;

    // What to append, in order: each init segment before the segments
    // that map it.
    const items = [];
    let map = "";
    for (const [i, seg] of media.segments.entries()) {
      const mapChanged = seg.map !== map;
      if (mapChanged) items.push({ key: resolveKey(playlistKey, seg.map), init: true });
      map = seg.map;
      // Where the media's own time must be put on the playlist's: at the
      // start, after a discontinuity, with another init segment.
      const align = i === 0 || seg.discontinuity || mapChanged;
      items.push({ key: resolveKey(playlistKey, seg.uri), init: false, n: i + 1, start: seg.start, align });
    }
    // Each object is read while the one before is appended.
    let next = load(items[0].key);
    let init = null;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const data = await next;
      check();
      next = i + 1 < items.length ? load(items[i + 1].key) : null;
      if (next) next.catch(() => {}); // awaited at its turn
      if (item.init) {
        init = data;
        await append(video, sb, data, check);
        continue;
      }
      if (item.align) {
        // The recording's time starts at 0, where its media starts; a
        // segment after a break starts where the playlist says.
        const start = mediaStart(init, data);
        if (item.n === 1) info.start = start;
        const offset = item.start - start;
        if (item.n === 1 || Math.abs(offset - sb.timestampOffset) > alignTolerance) {
          await idle(sb);
          sb.timestampOffset = offset;
        }
      }
      await append(video, sb, data, check);
      info.appended = item.n;
      if (item.n === 1) video.play().catch(() => {}); // a browser may want a gesture first; the controls are there
      status(`Segment ${item.n} of ${media.segments.length}` + (media.ended ? "" : " (the playlist has no end: all that was recorded)"), "playing");
    }
    await idle(sb);
    check();
    ms.endOfStream();
    status(`${media.segments.length} segment${media.segments.length === 1 ? "" : "s"}, ${formatDuration(media.duration)}` +
      (media.ended ? "" : ", as far as the recording went"), "done");
  })().catch((err) => {
    if (err instanceof StoppedError) return;
    status(err.message || String(err), "error");
    // What was appended still plays; a decoding failure is the media
    // element's error already.
    if (ms.readyState === "open") {
      try {
        ms.endOfStream();
      } catch {
        // still updating: it ends with the element
      }
    }
    throw err;
  });
  done.catch(() => {}); // reported through onStatus; callers may await done

  return {
    info,
    done,
    stop() {
      stopped = true;
      clearInterval(gapWatch);
      video.pause();
      video.removeAttribute("src");
      video.load();
      URL.revokeObjectURL(url);
    },
  };
}

class StoppedError extends Error {}

// append appends data, making room when the SourceBuffer is full: what
// was played, but for the last keepBehindSeconds, is removed once the
// play position moved on.
async function append(video, sb, data, check) {
  for (;;) {
    await idle(sb);
    check();
    try {
      sb.appendBuffer(data);
      await idle(sb);
      return;
    } catch (err) {
      if (err.name !== "QuotaExceededError") throw err;
    }
    const end = video.currentTime - keepBehindSeconds;
    if (sb.buffered.length && end > sb.buffered.start(0)) {
      sb.remove(sb.buffered.start(0), end);
      await idle(sb);
    } else {
      await once(video, "timeupdate");
    }
  }
}

// idle waits for the SourceBuffer to finish what it does, failing with
// the media element's error when it fails.
function idle(sb) {
  if (!sb.updating) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      sb.removeEventListener("updateend", done);
      sb.removeEventListener("error", failed);
      resolve();
    };
    const failed = () => {
      sb.removeEventListener("updateend", done);
      sb.removeEventListener("error", failed);
      reject(new Error("the browser could not decode the recording"));
    };
    sb.addEventListener("updateend", done);
    sb.addEventListener("error", failed);
  });
}

function once(target, event) {
  return new Promise((resolve) => target.addEventListener(event, resolve, { once: true }));
}

/** Formats seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds) {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}
