// ivs-stage.js — the Stage API of Amazon IVS's Web Broadcast SDK, as its
// public documentation describes it, over ivsrt's open protocol (the
// events WebSocket, WHIP and WHEP, through ivsrt.js). An app written for
// IVS real-time changes one import:
//
//   import { Stage, LocalStageStream, SubscribeType, StageEvents, StreamType } from "/client/ivs-stage.js";
//
// What differs from the SDK, and what ivsrt does not do yet (with the
// error it gives), is in docs/ivs-stage-api.md. Nothing of Amazon's SDK
// is in here: this is written from the documented names and behaviour.

import { Stage as Client, decodeToken } from "./ivsrt.js";

/** The version of this module. */
export const VERSION = "1.0.0";

// --- enumerations ------------------------------------------------------

/** Events of a Stage, for stage.on and stage.off. */
export const StageEvents = Object.freeze({
  ERROR: "error",
  STAGE_CONNECTION_STATE_CHANGED: "stageConnectionStateChanged",
  STAGE_LEFT: "stageLeft",
  STAGE_PARTICIPANT_JOINED: "stageParticipantJoined",
  STAGE_PARTICIPANT_LEFT: "stageParticipantLeft",
  STAGE_PARTICIPANT_METADATA_CHANGED: "stageParticipantMetadataChanged",
  STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED: "stageParticipantPublishStateChanged",
  STAGE_PARTICIPANT_STREAMS_ADDED: "stageParticipantStreamsAdded",
  STAGE_PARTICIPANT_STREAMS_REMOVED: "stageParticipantStreamsRemoved",
  STAGE_PARTICIPANT_SUBSCRIBE_STATE_CHANGED: "stageParticipantSubscribeStateChanged",
  STAGE_STREAM_ADAPTION_CHANGED: "stageStreamAdaptionChanged",
  STAGE_STREAM_LAYERS_CHANGED: "stageStreamLayersChanged",
  STAGE_STREAM_LAYER_SELECTED: "stageStreamLayerSelected",
  STAGE_STREAM_MUTE_CHANGED: "stageStreamMuteChanged",
  STAGE_STREAM_SEI_MESSAGE_RECEIVED: "stageStreamSeiMessageReceived",
});

export const StageConnectionState = Object.freeze({
  CONNECTED: "connected",
  CONNECTING: "connecting",
  DISCONNECTED: "disconnected",
  ERRORED: "errored",
});

export const StageParticipantPublishState = Object.freeze({
  ATTEMPTING_PUBLISH: "attempting_publish",
  ERRORED: "errored",
  NOT_PUBLISHED: "not_published",
  PUBLISHED: "published",
});

export const StageParticipantSubscribeState = Object.freeze({
  ATTEMPTING_SUBSCRIBE: "attempting_subscribe",
  ERRORED: "errored",
  NOT_SUBSCRIBED: "not_subscribed",
  SUBSCRIBED: "subscribed",
});

export const SubscribeType = Object.freeze({
  AUDIO_ONLY: "audio_only",
  AUDIO_VIDEO: "audio_video",
  NONE: "none",
});

export const StreamType = Object.freeze({
  AUDIO: "audio",
  VIDEO: "video",
});

export const StageLeftReason = Object.freeze({
  FAILED_EXCHANGE: "failed-exchange",
  PARTICIPANT_DISCONNECTED: "participant-disconnected",
  REAL_TIME_CONNECTION_FORCED_LEAVE: "real-time-connection-forced-leave",
  REAL_TIME_CONNECTION_TOKEN_REVOCATION: "real-time-connection-token-revocation",
  STAGE_DELETED: "stage-deleted",
  TOKEN_REUSED: "token-reused",
  UNKNOWN: "unknown",
  USER_INITIATED: "user-initiated",
});

export const StageErrorCategory = Object.freeze({
  JOIN_ERROR: "JOIN_ERROR",
  PUBLISH_ERROR: "PUBLISH_ERROR",
  SUBSCRIBE_ERROR: "SUBSCRIBE_ERROR",
});

export const StageErrorCode = Object.freeze({
  TOKEN_MALFORMED: 1,
  TOKEN_EXPIRED: 2,
  TIMEOUT: 3,
  FAILED: 4,
  CANCELED: 5,
  STAGE_AT_CAPACITY: 6,
  CODEC_MISMATCH: 7,
  TOKEN_NOT_ALLOWED: 8,
  STAGE_DELETED: 9,
  PARTICIPANT_DISCONNECTED: 10,
  TOKEN_EXCHANGE_REQUEST_INVALID: 11,
  TOKEN_EXCHANGE_FAILED: 12,
});

export const InitialLayerPreference = Object.freeze({
  HIGHEST_QUALITY: "highest_quality",
  LOWEST_QUALITY: "lowest_quality",
});

export const JitterBufferMinDelay = Object.freeze({
  DEFAULT: "default",
  HIGH: "high",
  LOW: "low",
  MEDIUM: "medium",
});

export const StageStreamLayerSelectedReason = Object.freeze({
  SELECTED: "selected",
  UNAVAILABLE: "unavailable",
});

export const RemoteStageStreamEvents = Object.freeze({
  ADAPTION_CHANGED: "ADAPTION_CHANGED",
  LAYER_SELECTED: "LAYER_SELECTED",
  LAYERS_CHANGED: "LAYERS_CHANGED",
});

export const LocalStageStreamEvents = Object.freeze({
  LOCAL_STREAM_MUTE_CHANGED: "localStreamMuteChanged",
});

export const NetworkQuality = Object.freeze({
  DOWN: 0,
  POOR: 1,
  NORMAL: 2,
  GOOD: 3,
  EXCELLENT: 4,
});

// --- limits (ivsrt's; the SDK documents the names, not their values) ---

/** Video bitrates, in Kbps. */
export const STAGE_MAX_BITRATE = 2500;
export const STAGE_MIN_BITRATE = 100;
/** Frame rates, in frames per second. */
export const STAGE_MAX_FRAMERATE = 30;
export const STAGE_MIN_FRAMERATE = 10;
/** Audio bitrates, in Kbps. */
export const STAGE_MAX_AUDIO_BITRATE_KBPS = 128;
export const STAGE_MIN_AUDIO_BITRATE_KBPS = 12;
export const STAGE_MAX_AUDIO_BITRATE_KBPS_DEFAULT = 64;
/** The bounds of either side of a simulcast layer, in pixels. */
export const STAGE_MAX_RESOLUTION = 1280;
export const STAGE_MIN_RESOLUTION = 160;

/** Simulcast layers to pass in a video configuration's simulcast.layers (16:9). */
export const SimulcastLayerPresets = Object.freeze({
  DEFAULT_160: Object.freeze({ width: 284, height: 160, maxBitrateKbps: 150, maxFramerate: 15 }),
  DEFAULT_180: Object.freeze({ width: 320, height: 180, maxBitrateKbps: 200, maxFramerate: 15 }),
  DEFAULT_270: Object.freeze({ width: 480, height: 270, maxBitrateKbps: 400, maxFramerate: 20 }),
  DEFAULT_360: Object.freeze({ width: 640, height: 360, maxBitrateKbps: 700, maxFramerate: 20 }),
  DEFAULT_480: Object.freeze({ width: 854, height: 480, maxBitrateKbps: 900, maxFramerate: 30 }),
  DEFAULT_540: Object.freeze({ width: 960, height: 540, maxBitrateKbps: 1200, maxFramerate: 30 }),
  DEFAULT_720: Object.freeze({ width: 1280, height: 720, maxBitrateKbps: 1700, maxFramerate: 30 }),
});

// The jitter buffer targets, in milliseconds, of JitterBufferMinDelay's
// named values (DEFAULT leaves the browser's).
const jitterBufferTargets = { low: 100, medium: 250, high: 500 };

// Milliseconds a subscribe configuration's jitter buffer may ask for:
// what Chrome takes as an RTCRtpReceiver.jitterBufferTarget.
const maxJitterBufferMs = 4000;

// --- errors --------------------------------------------------------------

/**
 * An error of a Stage: its category (what failed), its code and a
 * message. `details` tells what ivsrt said ({code, status}), when it said
 * something.
 */
export class StageError extends Error {
  constructor(category, code, message, details) {
    super(message);
    this.name = "StageError";
    this.category = category;
    this.code = code;
    this.details = details || null;
  }
}

/** Errors thrown by constructors, as the SDK's Errors namespace names them. */
export const Errors = Object.freeze({
  STAGE_TOKEN_TYPE_ERROR: Object.freeze({ code: 19000, message: "Stage token must be a string", name: "StageTokenTypeError" }),
});

// What a refusal of ivsrt (its code) is in the SDK's codes.
const errorCodes = {
  LEFT: StageErrorCode.CANCELED, // leave() while joining
  TOKEN_MISSING: StageErrorCode.TOKEN_MALFORMED,
  TOKEN_INVALID: StageErrorCode.TOKEN_MALFORMED,
  TOKEN_EXPIRED: StageErrorCode.TOKEN_EXPIRED,
  TOKEN_REVOKED: StageErrorCode.PARTICIPANT_DISCONNECTED,
  DISCONNECTED: StageErrorCode.PARTICIPANT_DISCONNECTED,
  STAGE_NOT_FOUND: StageErrorCode.STAGE_DELETED,
  INSUFFICIENT_CAPABILITIES: StageErrorCode.TOKEN_NOT_ALLOWED,
  QUOTA_EXCEEDED: StageErrorCode.STAGE_AT_CAPACITY,
  INVALID_AUDIO_CODEC: StageErrorCode.CODEC_MISMATCH,
  INVALID_VIDEO_CODEC: StageErrorCode.CODEC_MISMATCH,
  UNSUPPORTED_MEDIA_TYPE: StageErrorCode.CODEC_MISMATCH,
};

// Refusals of a publication or subscription that retrying cannot fix:
// only those are ERROR events; the others are retried, and show as an
// ERRORED publish or subscribe state meanwhile.
const finalMediaCodes = new Set([
  "INSUFFICIENT_CAPABILITIES", "TOKEN_MISSING", "TOKEN_INVALID", "TOKEN_EXPIRED", "TOKEN_REVOKED",
  "STAGE_NOT_FOUND", "INVALID_INPUT", "INVALID_AUDIO_CODEC", "INVALID_VIDEO_CODEC", "UNSUPPORTED_MEDIA_TYPE",
]);

// Why a Stage was left, by the code ivsrt ended it with.
const leftReasons = {
  LEFT: StageLeftReason.USER_INITIATED,
  DISCONNECTED: StageLeftReason.PARTICIPANT_DISCONNECTED,
  TOKEN_REVOKED: StageLeftReason.PARTICIPANT_DISCONNECTED,
  STAGE_NOT_FOUND: StageLeftReason.STAGE_DELETED,
  REPLACED: StageLeftReason.TOKEN_REUSED,
  FAILED_EXCHANGE: StageLeftReason.FAILED_EXCHANGE,
};

function stageError(category, err) {
  const ivsCode = (err && errorCodes[err.code]) || StageErrorCode.FAILED;
  const message = (err && err.message) || "failed";
  return new StageError(category, ivsCode, message, err && err.code ? { code: err.code, status: err.status } : null);
}

// --- emitters -------------------------------------------------------------

// Emitter keeps listeners by event; each is called with its context, and
// one that throws does not stop the others, nor the stage.
class Emitter {
  #listeners = new Map();

  /** Calls callback (with `this` as context) on each event. */
  on(event, callback, context) {
    if (typeof callback !== "function") throw new TypeError("callback must be a function");
    if (!this.#listeners.has(event)) this.#listeners.set(event, []);
    this.#listeners.get(event).push({ callback, context });
  }

  /** Stops calling callback on event (the same context as given to on). */
  off(event, callback, context) {
    const list = this.#listeners.get(event);
    if (!list) return;
    const i = list.findIndex((l) => l.callback === callback && (context === undefined || l.context === context));
    if (i >= 0) list.splice(i, 1);
    if (!list.length) this.#listeners.delete(event);
  }

  /** Whether anything listens to event. */
  hasListenersFor(event) {
    return (this.#listeners.get(event) || []).length > 0;
  }

  // The stage's modules call this; apps do not.
  [Symbol.for("ivsrt.emit")](event, ...args) {
    for (const { callback, context } of [...(this.#listeners.get(event) || [])]) {
      try {
        callback.apply(context, args);
      } catch (err) {
        console.error(`ivs-stage: a listener of ${event} threw`, err);
      }
    }
  }
}

const emit = Symbol.for("ivsrt.emit");
// A remote stream is told its layers, and names the rid of a label.
const layersTold = Symbol("layersTold");
const ridOf = Symbol("ridOf");

// layerLabels name n layers, lowest first.
function layerLabels(n) {
  if (n === 1) return ["high"];
  if (n === 2) return ["low", "high"];
  return ["low", "mid", "high", ...Array.from({ length: Math.max(0, n - 3) }, (_, i) => "high" + (i + 2))];
}
// The stages a local stream is published to hear of its mute changes.
const muteChanged = Symbol("muteChanged");
const owners = Symbol("owners");

// --- streams ---------------------------------------------------------------

/** What local and remote streams have in common: one media track. */
export class StageStream extends Emitter {
  #track;
  #stats;

  /**
   * @param {MediaStreamTrack} track
   * @param {() => Promise<RTCStatsReport|undefined>} [getStats]
   */
  constructor(track, getStats) {
    super();
    if (!track || (track.kind !== "audio" && track.kind !== "video")) {
      throw new TypeError("a stage stream needs an audio or video MediaStreamTrack");
    }
    this.#track = track;
    this.#stats = getStats || null;
  }

  get id() { return this.#track.id; }
  get mediaStreamTrack() { return this.#track; }
  get streamType() { return this.#track.kind === "audio" ? StreamType.AUDIO : StreamType.VIDEO; }
  get isMuted() { return false; }

  /** The WebRTC statistics of the stream's sender or receiver, or undefined while it has none. */
  async requestRTCStats() {
    return this.#stats ? this.#stats() : undefined;
  }

  /** @deprecated: requestRTCStats. */
  getStats() {
    return this.requestRTCStats();
  }

  /** Forgets the statistics source. */
  cleanup() {
    this.#stats = null;
  }

  // Set by the stage publishing or receiving the stream.
  set statsSource(fn) { this.#stats = fn; }
}

/**
 * A camera, microphone or any MediaStreamTrack to publish, with its
 * configuration: for video {maxBitrate or maxVideoBitrateKbps (Kbps),
 * maxFramerate, simulcast: {enabled, layers}}, for audio
 * {maxAudioBitrateKbps}.
 */
export class LocalStageStream extends StageStream {
  #muted = false;
  #config;

  /**
   * @param {MediaStreamTrack} track
   * @param {object} [config]  StageVideoConfiguration or StageAudioConfiguration
   */
  constructor(track, config = {}) {
    super(track);
    this[owners] = new Set();
    this.#config = validateConfig(track, config || {});
  }

  get isMuted() { return this.#muted; }
  /** The configuration, with its defaults. */
  get mediaConfig() { return this.#config; }

  /**
   * Mutes (subscribers get nothing: silence, a frozen picture, and
   * STAGE_STREAM_MUTE_CHANGED) or unmutes the stream, whether it is
   * published yet or not.
   */
  setMuted(muted) {
    muted = !!muted;
    if (muted === this.#muted) return;
    this.#muted = muted;
    this[emit](LocalStageStreamEvents.LOCAL_STREAM_MUTE_CHANGED, muted);
    for (const stage of this[owners]) stage[muteChanged](this);
  }

  /**
   * Statistics of what is sent: for video one entry per layer
   * {rid, active, networkQuality, packetsSent, bytesSent, frameWidth,
   * frameHeight, framesPerSecond}; for audio one {networkQuality,
   * packetsSent, bytesSent}. Undefined while it is not published.
   */
  async requestQualityStats() {
    const report = await this.requestRTCStats();
    if (!report) return undefined;
    const lost = new Map();
    report.forEach((s) => {
      if (s.type === "remote-inbound-rtp") lost.set(s.localId, s.fractionLost || 0);
    });
    const out = [];
    report.forEach((s) => {
      if (s.type !== "outbound-rtp") return;
      const entry = { networkQuality: networkQuality(lost.get(s.id)), packetsSent: s.packetsSent || 0, bytesSent: s.bytesSent || 0 };
      if (this.streamType === StreamType.VIDEO) {
        Object.assign(entry, { rid: s.rid || "", active: s.active !== false, frameWidth: s.frameWidth || 0,
          frameHeight: s.frameHeight || 0, framesPerSecond: s.framesPerSecond || 0 });
      }
      out.push(entry);
    });
    return out;
  }

  /** SEI messages: not in ivsrt (docs/ivs-stage-api.md). */
  async insertSeiMessage() {
    throw new StageError(StageErrorCategory.PUBLISH_ERROR, StageErrorCode.FAILED,
      "ivsrt does not carry SEI messages (in-band messaging) yet");
  }
}

/** A participant's audio or video as received: from STAGE_PARTICIPANT_STREAMS_ADDED. */
export class RemoteStageStream extends StageStream {
  #muted;
  #participant;
  #layers = []; // StageStreamLayer[], lowest first
  #rids = new Map(); // label → the publisher's rid
  #preferred = ""; // the rid asked for; "": the server adapts

  constructor(track, participant, muted, getStats) {
    super(track, getStats);
    this.#participant = participant;
    this.#muted = !!muted;
  }

  get isMuted() { return this.#muted; }
  get participantInfo() { return this.#participant; }
  /** True while the server picks the layer; false while the app chose one (preferredLayerForStream). */
  get isAdapting() { return !this.#preferred; }

  /**
   * The layers of a simulcast publisher's video, lowest first: {label,
   * width, height, bitrateBps, framesPerSecond, selected}; none for a
   * publisher of one layer, or audio.
   */
  getLayers() { return this.#layers.map((l) => ({ ...l })); }
  getSelectedLayer() {
    const l = this.#layers.find((x) => x.selected);
    return l ? { ...l } : undefined;
  }
  getLowestQualityLayer() { return this.#layers.length ? { ...this.#layers[0] } : undefined; }
  getHighestQualityLayer() { return this.#layers.length ? { ...this.#layers[this.#layers.length - 1] } : undefined; }

  // The stage feeds the stream what the server tells of its layers, and
  // learns what changed.
  [layersTold](told) {
    const list = told.layers || [];
    const labels = layerLabels(list.length);
    const before = this.#layers;
    const selectedBefore = before.find((x) => x.selected);
    const adaptingBefore = this.isAdapting;
    this.#rids = new Map(list.map((l, i) => [labels[i], l.rid]));
    this.#layers = list.map((l, i) => ({
      label: labels[i], width: l.width || 0, height: l.height || 0, bitrateBps: l.bitrateBps || 0,
      framesPerSecond: l.framesPerSecond || 0, selected: l.rid === told.selected,
    }));
    this.#preferred = told.preferred || "";
    const selected = this.#layers.find((x) => x.selected);
    const key = (ls) => JSON.stringify(ls.map(({ selected: _, ...l }) => l));
    return {
      layersChanged: key(before) !== key(this.#layers),
      selectedChanged: (selectedBefore && selectedBefore.label) !== (selected && selected.label),
      adaptionChanged: adaptingBefore !== this.isAdapting,
      selected: selected ? { ...selected } : undefined,
      // The app's choice is not what is sent: the publisher does not send it now.
      unavailable: !!this.#preferred && told.selected !== this.#preferred,
    };
  }

  // ridOf is the publisher's rid of a layer, by label; "" if unknown.
  [ridOf](label) {
    return this.#rids.get(label) || "";
  }

  /**
   * Statistics of what is received: {networkQuality, packetsReceived,
   * packetsLost, bytesReceived, jitter}, and for video frameWidth,
   * frameHeight, framesPerSecond. Undefined while it has none.
   */
  async requestQualityStats() {
    const report = await this.requestRTCStats();
    if (!report) return undefined;
    let out;
    report.forEach((s) => {
      if (s.type !== "inbound-rtp" || out) return;
      const received = s.packetsReceived || 0;
      const lost = s.packetsLost || 0;
      out = { networkQuality: networkQuality(received + lost > 0 ? lost / (received + lost) : 0), packetsReceived: received,
        packetsLost: lost, bytesReceived: s.bytesReceived || 0, jitter: s.jitter || 0 };
      if (this.streamType === StreamType.VIDEO) {
        Object.assign(out, { frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0, framesPerSecond: s.framesPerSecond || 0 });
      }
    });
    return out;
  }

  set muted(m) { this.#muted = !!m; }
}

// networkQuality rates a fraction of packets lost.
function networkQuality(fractionLost) {
  const f = fractionLost || 0;
  if (f >= 0.3) return NetworkQuality.DOWN;
  if (f >= 0.1) return NetworkQuality.POOR;
  if (f >= 0.03) return NetworkQuality.NORMAL;
  if (f >= 0.01) return NetworkQuality.GOOD;
  return NetworkQuality.EXCELLENT;
}

// validateConfig checks a LocalStageStream's configuration and returns it
// with its defaults. Out of range values throw, as the SDK documents.
function validateConfig(track, config) {
  const range = (name, v, min, max) => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
      throw new RangeError(`${name} must be a number from ${min} to ${max}, got ${v}`);
    }
    return v;
  };
  if (track.kind === "audio") {
    const out = { maxAudioBitrateKbps: STAGE_MAX_AUDIO_BITRATE_KBPS_DEFAULT, stereo: false };
    if (config.maxAudioBitrateKbps !== undefined) {
      out.maxAudioBitrateKbps = range("maxAudioBitrateKbps", config.maxAudioBitrateKbps, STAGE_MIN_AUDIO_BITRATE_KBPS, STAGE_MAX_AUDIO_BITRATE_KBPS);
    }
    if (config.stereo) throw new StageError(StageErrorCategory.PUBLISH_ERROR, StageErrorCode.FAILED, "ivsrt does not publish stereo audio yet");
    return out;
  }
  const out = { maxBitrate: STAGE_MAX_BITRATE, maxFramerate: STAGE_MAX_FRAMERATE, simulcast: { enabled: false, layers: [] } };
  const bitrate = config.maxVideoBitrateKbps !== undefined ? config.maxVideoBitrateKbps : config.maxBitrate;
  if (bitrate !== undefined) out.maxBitrate = range("maxBitrate", bitrate, STAGE_MIN_BITRATE, STAGE_MAX_BITRATE);
  out.maxVideoBitrateKbps = out.maxBitrate;
  if (config.maxFramerate !== undefined) out.maxFramerate = range("maxFramerate", config.maxFramerate, STAGE_MIN_FRAMERATE, STAGE_MAX_FRAMERATE);
  if (config.minBitrate !== undefined) out.minBitrate = range("minBitrate", config.minBitrate, STAGE_MIN_BITRATE, STAGE_MAX_BITRATE);
  if (config.inBandMessaging && config.inBandMessaging.enabled) {
    throw new StageError(StageErrorCategory.PUBLISH_ERROR, StageErrorCode.FAILED, "ivsrt does not carry SEI messages (in-band messaging) yet");
  }
  const sc = config.simulcast || {};
  out.simulcast.enabled = !!sc.enabled;
  const layers = sc.layers || [];
  if (layers.length > 3) throw new RangeError("simulcast.layers: at most 3 layers");
  const sorted = [...layers].sort((a, b) => a.height - b.height);
  const top = sorted[sorted.length - 1];
  for (const l of sorted) {
    range("layer width", l.width, STAGE_MIN_RESOLUTION, STAGE_MAX_RESOLUTION);
    range("layer height", l.height, STAGE_MIN_RESOLUTION, STAGE_MAX_RESOLUTION);
    range("layer maxBitrateKbps", l.maxBitrateKbps, STAGE_MIN_BITRATE, out.maxBitrate);
    range("layer maxFramerate", l.maxFramerate, 1, out.maxFramerate);
    if (Math.abs(l.width / l.height - top.width / top.height) > 0.02) {
      throw new RangeError(`simulcast layer ${l.width}x${l.height}: its aspect ratio must be the largest layer's`);
    }
  }
  out.simulcast.layers = sorted.map((l) => ({ ...l }));
  return out;
}

// The rids of simulcast layers, lowest first (the server's names).
const rids = ["q", "h", "f"];

// encodingsOf are the sendEncodings of a local stream, from its
// configuration and its track's size.
function encodingsOf(stream) {
  const cfg = stream.mediaConfig;
  if (stream.streamType === StreamType.AUDIO) return [{ maxBitrate: cfg.maxAudioBitrateKbps * 1000 }];
  const top = { maxBitrate: cfg.maxBitrate * 1000, maxFramerate: cfg.maxFramerate };
  if (!cfg.simulcast.enabled) return [top];
  const settings = stream.mediaStreamTrack.getSettings ? stream.mediaStreamTrack.getSettings() : {};
  let layers = cfg.simulcast.layers;
  const height = settings.height || (layers.length ? layers[layers.length - 1].height : 720);
  if (!layers.length) {
    // As the SDK: 720p and up three layers, 360p and up two, else one.
    const high = { height, maxBitrateKbps: Math.min(1700, cfg.maxBitrate), maxFramerate: cfg.maxFramerate };
    const mid = { height: height / 2, maxBitrateKbps: Math.min(700, cfg.maxBitrate), maxFramerate: Math.min(20, cfg.maxFramerate) };
    const low = { height: height / 4, maxBitrateKbps: Math.min(200, cfg.maxBitrate), maxFramerate: Math.min(15, cfg.maxFramerate) };
    layers = height >= 720 ? [low, mid, high] : height >= 360 ? [mid, high] : [high];
  }
  if (layers.length === 1) {
    return [{ maxBitrate: layers[0].maxBitrateKbps * 1000, maxFramerate: layers[0].maxFramerate }];
  }
  return layers.map((l, i) => ({
    rid: rids[rids.length - layers.length + i],
    scaleResolutionDownBy: Math.max(1, height / l.height),
    maxBitrate: l.maxBitrateKbps * 1000,
    maxFramerate: l.maxFramerate,
    active: true,
  }));
}

// --- participants ------------------------------------------------------------

// infoOf makes the StageParticipantInfo of an ivsrt participant.
function newInfo(p, isLocal) {
  return {
    id: p.id,
    userId: p.userId || "",
    attributes: { ...(p.attributes || {}) },
    userInfo: { ...(p.attributes || {}) },
    isLocal,
    isPublishing: !!p.publishing,
    capabilities: new Set(p.capabilities || []),
    audioMuted: false,
    videoStopped: false,
  };
}

// mutedKinds is what an ivsrt participant's tracks say is muted.
function mutedKinds(p) {
  const m = { audio: false, video: false };
  for (const t of p.tracks || []) if (t.muted) m[t.kind] = true;
  return m;
}

// --- the stage --------------------------------------------------------------

/**
 * A participant token's presence in a stage, driven by a strategy:
 * {stageStreamsToPublish(), shouldPublishParticipant(participant),
 * shouldSubscribeToParticipant(participant), and optionally
 * subscribeConfiguration(participant), preferredLayerForStream(participant, stream)}.
 */
export class Stage extends Emitter {
  #token;
  #strategy;
  #client = null;
  #joining = null;
  #state = StageConnectionState.DISCONNECTED;
  #everConnected = false;
  #local = null; // StageParticipantInfo
  #infos = new Map(); // remote id → StageParticipantInfo
  #decisions = new Map(); // remote id → SubscribeType
  #toldNoSEI = new Set(); // remote ids whose subscription was told SEI is not carried, since the join
  #published = []; // LocalStageStream[] given to the client
  #remote = new Map(); // remote id → RemoteStageStream[]

  /**
   * @param {string} token  a participant token (CreateParticipantToken)
   * @param {object} strategy  the StageStrategy
   */
  constructor(token, strategy) {
    super();
    if (typeof token !== "string") {
      const e = new TypeError(Errors.STAGE_TOKEN_TYPE_ERROR.message);
      e.code = Errors.STAGE_TOKEN_TYPE_ERROR.code;
      e.name = Errors.STAGE_TOKEN_TYPE_ERROR.name;
      throw e;
    }
    try {
      decodeToken(token);
    } catch (err) {
      throw new StageError(StageErrorCategory.JOIN_ERROR, StageErrorCode.TOKEN_MALFORMED, "Error parsing Stage Token.", { code: err.code });
    }
    this.#token = token.trim();
    this.#strategy = checkStrategy(strategy);
  }

  /**
   * Joins the stage: resolves once connected and the strategy's
   * publication is under way; rejects with a StageError.
   */
  join() {
    if (this.#joining) return this.#joining;
    const joining = this.#join();
    this.#joining = joining;
    joining.catch(() => {
      if (this.#joining === joining) this.#joining = null;
    });
    return joining;
  }

  async #join() {
    const old = this.#client;
    if (old) {
      // A client still ending (leave() while joining) is let go.
      this.#client = null;
      old.leave();
    }
    const client = new Client(this.#token, {
      publish: false, simulcast: false,
      subscription: (p) => this.#subscriptionOf(p),
      initialLayer: (p) => this.#initialLayerOf(p),
    });
    this.#client = client;
    this.#infos.clear();
    this.#decisions.clear();
    this.#toldNoSEI.clear();
    this.#remote.clear();
    this.#everConnected = false;
    this.#local = newInfo(client.localParticipant, true);
    this.#local.capabilities = new Set(capabilitiesOf(client));
    this.#wire(client);
    this.#setState(StageConnectionState.CONNECTING);
    try {
      await client.join();
    } catch (err) {
      throw stageError(StageErrorCategory.JOIN_ERROR, err);
    }
    if (this.#client !== client) throw new StageError(StageErrorCategory.JOIN_ERROR, StageErrorCode.CANCELED, "left while joining");
    this.#refreshPublication();
  }

  /** Leaves the stage: STAGE_LEFT with USER_INITIATED. */
  leave() {
    if (this.#client) this.#client.leave();
  }

  /** Asks the strategy again and applies what changed. */
  refreshStrategy() {
    const client = this.#client;
    if (!client || client.connectionState === "disconnected") return;
    for (const info of this.#infos.values()) this.#decide(info);
    client.refresh();
    // While reconnecting too: the client publishes what it is given once
    // connected again.
    if (this.#everConnected) this.#refreshPublication();
    for (const [id, streams] of this.#remote) {
      const video = streams.find((s) => s.streamType === StreamType.VIDEO);
      const info = this.#infos.get(id);
      if (video && info && video.getLayers().length) this.#preferLayer(info, video);
    }
  }

  /** Takes another strategy, and applies it. */
  replaceStrategy(strategy) {
    this.#strategy = checkStrategy(strategy);
    this.refreshStrategy();
  }

  /**
   * Exchanges the participant's token for another (both self-signed) without
   * leaving: capabilities, userId and attributes change; the strategy is
   * asked again. A token that may not replace this one rejects with
   * TOKEN_EXCHANGE_REQUEST_INVALID and changes nothing; one the server
   * refuses rejects with TOKEN_EXCHANGE_FAILED and leaves the stage
   * (FAILED_EXCHANGE), as the SDK does.
   */
  async exchangeToken(newToken) {
    const client = this.#client;
    const invalid = (msg) => new StageError(StageErrorCategory.JOIN_ERROR, StageErrorCode.TOKEN_EXCHANGE_REQUEST_INVALID, msg);
    if (typeof newToken !== "string") throw invalid("the token must be a string");
    let claims;
    try {
      claims = decodeToken(newToken);
    } catch {
      throw invalid("the token is malformed");
    }
    if (!client || client.connectionState !== "connected") throw invalid("the stage is not connected");
    for (const name of ["jti", "topic", "resource", "whip_url", "events_url"]) {
      if (claims[name] !== client.claims[name]) throw invalid(`the new token's ${name} differs from the current one's`);
    }
    let answer;
    try {
      answer = await client.exchangeToken(newToken);
    } catch (err) {
      const failed = new StageError(StageErrorCategory.JOIN_ERROR, StageErrorCode.TOKEN_EXCHANGE_FAILED, err.message, { code: err.code });
      if (this.#client === client) this.#endWith(client, "FAILED_EXCHANGE", failed);
      throw failed;
    }
    this.#token = newToken.trim();
    this.#local.userId = answer.userId || "";
    this.#local.attributes = { ...(answer.attributes || {}) };
    this.#local.userInfo = { ...this.#local.attributes };
    this.#local.capabilities = new Set(answer.capabilities || []);
    this[emit](StageEvents.STAGE_PARTICIPANT_METADATA_CHANGED, this.#local);
    this.refreshStrategy();
  }

  // --- the strategy ---

  #ask(what, fallback, fn) {
    try {
      return fn();
    } catch (err) {
      console.error(`ivs-stage: the strategy's ${what} threw`, err);
      return fallback;
    }
  }

  #decide(info) {
    const type = this.#ask("shouldSubscribeToParticipant", SubscribeType.NONE,
      () => this.#strategy.shouldSubscribeToParticipant(info));
    this.#decisions.set(info.id, Object.values(SubscribeType).includes(type) ? type : SubscribeType.NONE);
  }

  // #subscriptionOf is what the client receives of a publisher: the
  // strategy's last answer for it.
  #subscriptionOf(p) {
    switch (this.#decisions.get(p.id)) {
      case SubscribeType.AUDIO_VIDEO:
        return "audioVideo";
      case SubscribeType.AUDIO_ONLY:
        return "audio";
      default:
        return "none";
    }
  }

  // #initialLayerOf is the layer a new subscription's first picture comes
  // from: the strategy's subscribeConfiguration, LOWEST_QUALITY by default
  // as the SDK's. Asking for SEI messages, which ivsrt does not carry, is
  // an ERROR (the subscription goes on without them).
  #initialLayerOf(p) {
    const info = this.#infos.get(p.id);
    let cfg = {};
    if (info && typeof this.#strategy.subscribeConfiguration === "function") {
      cfg = this.#ask("subscribeConfiguration", {}, () => this.#strategy.subscribeConfiguration(info)) || {};
    }
    if (cfg.inBandMessaging && cfg.inBandMessaging.enabled && !this.#toldNoSEI.has(p.id)) {
      this.#toldNoSEI.add(p.id);
      this[emit](StageEvents.ERROR, new StageError(StageErrorCategory.SUBSCRIBE_ERROR, StageErrorCode.FAILED,
        "ivsrt does not carry SEI messages (in-band messaging) yet", { participantId: p.id }));
    }
    const pref = cfg.simulcast && cfg.simulcast.initialLayerPreference;
    if (pref !== undefined && pref !== InitialLayerPreference.LOWEST_QUALITY && pref !== InitialLayerPreference.HIGHEST_QUALITY) {
      console.error(`ivs-stage: simulcast.initialLayerPreference ${JSON.stringify(pref)} is not an InitialLayerPreference; LOWEST_QUALITY is used`);
    }
    return pref === InitialLayerPreference.HIGHEST_QUALITY ? "highest" : "lowest";
  }

  // #refreshPublication publishes what the strategy says, if anything.
  #refreshPublication() {
    const client = this.#client;
    if (!client) return;
    let streams = [];
    if (client.canPublish && this.#ask("shouldPublishParticipant", false, () => this.#strategy.shouldPublishParticipant(this.#local))) {
      const given = this.#ask("stageStreamsToPublish", [], () => this.#strategy.stageStreamsToPublish()) || [];
      const kinds = new Set();
      for (const s of given) {
        if (!(s instanceof LocalStageStream)) {
          console.error("ivs-stage: stageStreamsToPublish returned something that is not a LocalStageStream", s);
          continue;
        }
        if (kinds.has(s.streamType)) {
          console.error(`ivs-stage: more than one ${s.streamType} stream to publish; the first is published`);
          continue;
        }
        kinds.add(s.streamType);
        streams.push(s);
      }
    }
    const before = this.#published;
    const removed = before.filter((s) => !streams.includes(s));
    const added = streams.filter((s) => !before.includes(s));
    this.#published = streams;
    for (const s of removed) {
      s[owners].delete(this);
      s.statsSource = null;
    }
    for (const s of added) {
      s[owners].add(this);
      const kind = s.mediaStreamTrack.kind;
      s.statsSource = async () => {
        const sender = this.#client && this.#published.includes(s) && this.#client.senderOf(kind);
        return sender ? sender.getStats() : undefined;
      };
    }
    this.#updateLocalMute();
    try {
      client.publishTracks(streams.map((s) => ({ track: s.mediaStreamTrack, encodings: encodingsOf(s), muted: s.isMuted })));
    } catch (err) {
      this[emit](StageEvents.ERROR, stageError(StageErrorCategory.PUBLISH_ERROR, err));
    }
    if (removed.length) this[emit](StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, this.#local, removed);
    if (added.length) this[emit](StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, this.#local, added);
  }

  [muteChanged](stream) {
    if (!this.#published.includes(stream) || !this.#client) return;
    this.#updateLocalMute();
    this.#client.publishTracks(this.#published.map((s) => ({ track: s.mediaStreamTrack, encodings: encodingsOf(s), muted: s.isMuted })));
    this[emit](StageEvents.STAGE_STREAM_MUTE_CHANGED, this.#local, stream);
  }

  #updateLocalMute() {
    const audio = this.#published.find((s) => s.streamType === StreamType.AUDIO);
    const video = this.#published.find((s) => s.streamType === StreamType.VIDEO);
    this.#local.audioMuted = !!(audio && audio.isMuted);
    this.#local.videoStopped = !!(video && video.isMuted);
  }

  // --- the client's events ---

  #wire(client) {
    const mine = (fn) => (detail) => {
      if (this.#client === client) fn(detail);
    };
    client.on("connectionstatechange", mine(({ state }) => {
      if (state === "connected") {
        this.#everConnected = true;
        this.#setState(StageConnectionState.CONNECTED);
      } else if (state === "reconnecting") {
        // The SDK's word for a connection lost mid-session, then retried.
        this.#setState(StageConnectionState.ERRORED);
        this.#setState(StageConnectionState.CONNECTING);
      }
      // "disconnected" is told with the reason, in the disconnected event.
    }));
    client.on("joined", mine(({ participantId }) => {
      this.#local.id = participantId;
    }));
    client.on("participantjoined", mine(({ participant }) => {
      if (participant.isLocal) return;
      const info = newInfo(participant, false);
      const muted = mutedKinds(participant);
      info.audioMuted = muted.audio;
      info.videoStopped = muted.video;
      this.#infos.set(info.id, info);
      this.#decide(info);
      this[emit](StageEvents.STAGE_PARTICIPANT_JOINED, info);
    }));
    client.on("participantleft", mine(({ participant }) => {
      const info = this.#infos.get(participant.id);
      if (!info) return;
      this.#infos.delete(participant.id);
      this.#decisions.delete(participant.id);
      this[emit](StageEvents.STAGE_PARTICIPANT_LEFT, info);
    }));
    const published = (on) => mine(({ participant }) => {
      const info = this.#infos.get(participant.id);
      if (!info) return;
      info.isPublishing = on;
      this[emit](StageEvents.STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED, info,
        on ? StageParticipantPublishState.PUBLISHED : StageParticipantPublishState.NOT_PUBLISHED);
    });
    client.on("participantpublished", published(true));
    client.on("participantunpublished", published(false));
    client.on("participantupdated", mine(({ participant }) => this.#onUpdated(participant)));
    client.on("streamadded", mine(({ participant, stream }) => this.#onStreamAdded(participant, stream)));
    client.on("layerschange", mine(({ participant }) => this.#onLayers(participant.id)));
    client.on("streamremoved", mine(({ participant }) => {
      const streams = this.#remote.get(participant.id);
      if (!streams) return;
      this.#remote.delete(participant.id);
      for (const s of streams) s.statsSource = null;
      this[emit](StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, this.#infos.get(participant.id) || newInfo(participant, false), streams);
    }));
    client.on("publishstatechange", mine(({ state, error }) => {
      const states = { not_published: "NOT_PUBLISHED", attempting: "ATTEMPTING_PUBLISH", published: "PUBLISHED", errored: "ERRORED" };
      this.#local.isPublishing = state === "published";
      this[emit](StageEvents.STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED, this.#local, StageParticipantPublishState[states[state]]);
      if (error && finalMediaCodes.has(error.code)) this[emit](StageEvents.ERROR, stageError(StageErrorCategory.PUBLISH_ERROR, error));
    }));
    client.on("subscribestatechange", mine(({ participant, state, error }) => {
      const info = this.#infos.get(participant.id);
      if (!info) return;
      const states = { not_subscribed: "NOT_SUBSCRIBED", attempting: "ATTEMPTING_SUBSCRIBE", subscribed: "SUBSCRIBED", errored: "ERRORED" };
      this[emit](StageEvents.STAGE_PARTICIPANT_SUBSCRIBE_STATE_CHANGED, info, StageParticipantSubscribeState[states[state]]);
      if (error && finalMediaCodes.has(error.code)) this[emit](StageEvents.ERROR, stageError(StageErrorCategory.SUBSCRIBE_ERROR, error));
    }));
    client.on("disconnected", mine(({ code, reason }) => {
      const err = code === "LEFT" || code === "REPLACED" ? null
        : stageError(StageErrorCategory.JOIN_ERROR, { code, message: reason });
      this.#finish(code, err);
    }));
  }

  #onUpdated(participant) {
    if (participant.isLocal) return;
    const info = this.#infos.get(participant.id);
    if (!info) return;
    const attrs = JSON.stringify(participant.attributes || {});
    if (info.userId !== (participant.userId || "") || JSON.stringify(info.attributes) !== attrs) {
      info.userId = participant.userId || "";
      info.attributes = JSON.parse(attrs);
      info.userInfo = JSON.parse(attrs);
      this[emit](StageEvents.STAGE_PARTICIPANT_METADATA_CHANGED, info);
    }
    if (JSON.stringify([...info.capabilities].sort()) !== JSON.stringify([...(participant.capabilities || [])].sort())) {
      info.capabilities = new Set(participant.capabilities || []);
    }
    // A publisher between two sessions lists no tracks: its mutes stand.
    if (!participant.publishing || !(participant.tracks || []).length) return;
    const muted = mutedKinds(participant);
    const changed = [];
    if (info.audioMuted !== muted.audio) changed.push(StreamType.AUDIO);
    if (info.videoStopped !== muted.video) changed.push(StreamType.VIDEO);
    info.audioMuted = muted.audio;
    info.videoStopped = muted.video;
    for (const s of this.#remote.get(participant.id) || []) {
      if (!changed.includes(s.streamType)) continue;
      s.muted = muted[s.streamType];
      this[emit](StageEvents.STAGE_STREAM_MUTE_CHANGED, info, s);
    }
  }

  #onStreamAdded(participant, stream) {
    if (participant.isLocal) return;
    const info = this.#infos.get(participant.id);
    if (!info) return;
    const client = this.#client;
    const muted = mutedKinds(participant);
    const streams = stream.getTracks().map((track) => new RemoteStageStream(track, info, muted[track.kind], async () => {
      const receiver = this.#client === client && client.receiverOf(track);
      return receiver ? receiver.getStats() : undefined;
    }));
    this.#remote.set(participant.id, streams);
    this.#configureSubscription(info, streams);
    this[emit](StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, info, streams);
    this.#onLayers(participant.id);
  }

  // #onLayers gives a participant's video stream what the server told of
  // its layers, tells what changed, and asks the strategy for a layer
  // when the stream has layers to choose from.
  #onLayers(id) {
    const video = (this.#remote.get(id) || []).find((s) => s.streamType === StreamType.VIDEO);
    const told = this.#client && this.#client.layersOf(id);
    const info = this.#infos.get(id);
    if (!video || !told || !info) return;
    const hadLayers = video.getLayers().length > 0;
    const c = video[layersTold](told);
    if (c.layersChanged) {
      const layers = video.getLayers();
      video[emit](RemoteStageStreamEvents.LAYERS_CHANGED, layers);
      this[emit](StageEvents.STAGE_STREAM_LAYERS_CHANGED, info, video, layers);
    }
    if (c.adaptionChanged) {
      video[emit](RemoteStageStreamEvents.ADAPTION_CHANGED, video.isAdapting);
      this[emit](StageEvents.STAGE_STREAM_ADAPTION_CHANGED, info, video, video.isAdapting);
    }
    if (c.selectedChanged || c.adaptionChanged) {
      const reason = c.unavailable ? StageStreamLayerSelectedReason.UNAVAILABLE : StageStreamLayerSelectedReason.SELECTED;
      video[emit](RemoteStageStreamEvents.LAYER_SELECTED, c.selected, reason);
      this[emit](StageEvents.STAGE_STREAM_LAYER_SELECTED, info, video, c.selected, reason);
    }
    if (!hadLayers && video.getLayers().length > 0) this.#preferLayer(info, video);
  }

  // #configureSubscription applies the strategy's subscribe configuration:
  // the jitter buffer's minimum delay, when the participant does not
  // publish (as the SDK).
  #configureSubscription(info, streams) {
    if (typeof this.#strategy.subscribeConfiguration !== "function") return;
    const cfg = this.#ask("subscribeConfiguration", {}, () => this.#strategy.subscribeConfiguration(info)) || {};
    const minDelay = cfg.jitterBuffer && cfg.jitterBuffer.minDelay;
    if (minDelay === undefined || minDelay === JitterBufferMinDelay.DEFAULT || this.#published.length) return;
    const ms = typeof minDelay === "number" ? minDelay : jitterBufferTargets[minDelay];
    if (!(ms >= 0 && ms <= maxJitterBufferMs)) {
      console.error(`ivs-stage: jitterBuffer.minDelay ${minDelay} is not a JitterBufferMinDelay nor 0 to ${maxJitterBufferMs} ms`);
      return;
    }
    for (const s of streams) {
      const receiver = this.#client.receiverOf(s.mediaStreamTrack);
      if (receiver && "jitterBufferTarget" in receiver) receiver.jitterBufferTarget = ms;
    }
  }

  // #preferLayer asks the strategy which layer of a video stream to get
  // (a StageStreamLayer, its label, or undefined/null for the server's
  // choice), and asks the server for it.
  #preferLayer(info, stream) {
    if (typeof this.#strategy.preferredLayerForStream !== "function" || !this.#client) return;
    const answer = this.#ask("preferredLayerForStream", undefined, () => this.#strategy.preferredLayerForStream(info, stream));
    let rid = "";
    if (answer !== undefined && answer !== null) {
      const label = typeof answer === "string" ? answer : answer.label;
      rid = stream[ridOf](label);
      if (!rid) console.error(`ivs-stage: preferredLayerForStream returned ${JSON.stringify(label)}, not a layer of the stream; the server chooses`);
    }
    this.#client.setPreferredLayer(info.id, rid);
  }

  // #endWith leaves the stage for a reason of its own (a failed exchange).
  #endWith(client, code, err) {
    this.#client = null;
    client.leave();
    this.#finish(code, err);
  }

  // #finish tells the end of the stage: the error, if any, the local
  // streams removed, STAGE_LEFT and the DISCONNECTED state.
  #finish(code, err) {
    this.#client = null;
    this.#joining = null;
    for (const [id, streams] of this.#remote) {
      this[emit](StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, this.#infos.get(id), streams);
    }
    this.#remote.clear();
    if (err) this[emit](StageEvents.ERROR, err);
    const local = this.#published;
    this.#published = [];
    for (const s of local) {
      s[owners].delete(this);
      s.statsSource = null;
    }
    if (local.length) this[emit](StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, this.#local, local);
    if (this.#local.isPublishing) {
      this.#local.isPublishing = false;
      this[emit](StageEvents.STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED, this.#local, StageParticipantPublishState.NOT_PUBLISHED);
    }
    this[emit](StageEvents.STAGE_LEFT, leftReasons[code] || StageLeftReason.UNKNOWN);
    this.#setState(StageConnectionState.DISCONNECTED);
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this[emit](StageEvents.STAGE_CONNECTION_STATE_CHANGED, state);
  }
}

function checkStrategy(strategy) {
  for (const fn of ["stageStreamsToPublish", "shouldPublishParticipant", "shouldSubscribeToParticipant"]) {
    if (!strategy || typeof strategy[fn] !== "function") throw new TypeError(`the strategy must have a ${fn} function`);
  }
  return strategy;
}

function capabilitiesOf(client) {
  const caps = [];
  if (client.canPublish) caps.push("PUBLISH");
  if (client.canSubscribe) caps.push("SUBSCRIBE");
  return caps;
}
