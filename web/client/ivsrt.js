// ivsrt.js — a small browser client for ivsrt stages.
//
// It speaks the protocol of docs/protocol.md: the events WebSocket to be in
// the stage and follow who is there, WHIP (RFC 9725) to publish the camera
// and microphone, WHEP to watch every publisher. No dependencies, no build
// step: import it as an ES module from the server that issued the token.
//
//   import { Stage } from "/client/ivsrt.js";
//   const stage = new Stage(token);
//   stage.addEventListener("streamadded", (e) => show(e.detail.participant, e.detail.stream));
//   stage.addEventListener("streamremoved", (e) => hide(e.detail.participant));
//   stage.addEventListener("disconnected", (e) => alert(e.detail.reason));
//   await stage.join();
//   stage.setMicrophoneMuted(true);
//   await stage.exchangeToken(newToken); // self-signed tokens: other capabilities or attributes
//   const stop = stage.attachVideo(participant.id, videoElement); // ask for the size it is shown at
//   stage.leave();
//
// Events (all CustomEvents; the payload is in `detail`):
//   connectionstatechange   {state}: "connecting", "connected", "reconnecting", "disconnected"
//   joined                  {participantId, sessionId, stageArn}: each time the WebSocket joins
//   participantjoined       {participant}      someone (the local participant too) is in the stage
//   participantleft         {participant}      someone left
//   participantpublished    {participant}      someone started publishing
//   participantunpublished  {participant}      someone stopped publishing
//   participantupdated      {participant}      anything else changed (tracks, attributes)
//   streamadded             {participant, stream, peerConnection}   media to show: the local camera, or a
//                                              subscription (and its peer connection, for statistics)
//   streamremoved           {participant, stream}
//   mutechange              {microphoneMuted, cameraMuted}
//   publishstatechange      {state, error}     the publication: "not_published", "attempting", "published", "errored"
//   subscribestatechange    {participant, state, error}  a subscription: "not_subscribed", "attempting", "subscribed", "errored"
//   layerschange            {participant, layers, selected, preferred}  a simulcast publisher's layers as received
//   tokenexchanged          {userId, attributes, capabilities, expirationTime}  exchangeToken took effect
//   activespeakers          {speakers}         who speaks now, loudest first (participants; speaking, audioLevel set)
//   error                   {error}            a publish or subscribe attempt failed (retried when it can be)
//   disconnected            {code, reason}     the end: left, disconnected by the server, token refused,
//                                              connection lost for good
//
// A dropped WebSocket is reconnected, with backoff, while the token is
// valid (or while media still flows: an expired token may rejoin while its
// participant is in the stage). The server's refusals and disconnections
// (DisconnectParticipant, DeleteStage, another connection taking over)
// are final. A publication or subscription whose network path is lost (a
// new address) restarts ICE in the same session (RFC 9725's PATCH), and
// is made again only if that cannot be done.
//
// The camera is published in simulcast: up to three layers (rids "q",
// "h" and "f": a quarter, half and the full size; fewer for a small
// camera) of which the server forwards to each subscriber the one that
// fits the size the subscriber shows it at (setVideoSize, attachVideo),
// and tells which it needs (publishLayers): the others are paused.

/** The version of this client, reported to the server as its sdkVersion. */
export const SDK_VERSION = "1.0.0";

/** Codes of a final `disconnected` event besides the server's own. */
export const LEFT = "LEFT";
export const CONNECTION_FAILED = "CONNECTION_FAILED";
export const CONNECTION_LOST = "CONNECTION_LOST";

// Close codes of the events WebSocket that end the participant for good,
// with the code they stand for when no message came before them.
const finalCloseCodes = {
  4401: "TOKEN_INVALID",
  4403: "DISCONNECTED",
  4404: "STAGE_NOT_FOUND",
  4409: "REPLACED",
};

// Codes of HTTP refusals of WHIP and WHEP that retrying cannot fix.
const fatalMediaCodes = new Set([
  "INSUFFICIENT_CAPABILITIES", "TOKEN_MISSING", "TOKEN_INVALID", "TOKEN_EXPIRED", "TOKEN_REVOKED",
  "STAGE_NOT_FOUND", "INVALID_INPUT", "INVALID_AUDIO_CODEC", "INVALID_VIDEO_CODEC", "UNSUPPORTED_MEDIA_TYPE",
]);

const gatherTimeoutMs = 3000;
// A connection disconnected for this long has lost its path: ICE restarts.
const disconnectedRestartMs = 2500;
// ICE restarts in a row before a new session is made instead.
const maxRestarts = 3;
const maxBackoffMs = 10000;

// The layers of a camera published in simulcast, lowest first: their rid,
// how many times smaller than the camera they are, and their bitrate.
const simulcastLayers = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];
// How many of those layers (the top ones) a camera is sent in, by its
// size in pixels: as many as libwebrtc (Chrome, Safari) sends at most at
// that size, which drops the top layers beyond. 960×540 and more: three;
// 480×270 (640×480 is one) and more: two, "h" and "f"; less: one, without
// simulcast.
const simulcastSizes = [{ pixels: 960 * 540, layers: 3 }, { pixels: 480 * 270, layers: 2 }];

/** An error of the server or the connection, with the protocol's code. */
export class StageError extends Error {
  /**
   * @param {string} code  e.g. "TOKEN_EXPIRED", "PUBLISHER_NOT_FOUND"
   * @param {string} message
   * @param {number} [status]  the HTTP status, for WHIP and WHEP refusals
   */
  constructor(code, message, status) {
    super(message || code);
    this.name = "StageError";
    this.code = code;
    this.status = status;
  }
}

/**
 * Decodes the claims of a participant token (without checking its
 * signature: that is the server's job).
 * @param {string} token
 * @returns {{jti: string, topic: string, resource: string, events_url: string, whip_url: string,
 *            user_id?: string, attributes?: object, capabilities?: object, exp: number}}
 */
export function decodeToken(token) {
  const part = String(token).split(".")[1];
  if (!part) throw new StageError("TOKEN_INVALID", "not a participant token");
  let b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  b64 += "=".repeat((4 - (b64.length % 4)) % 4);
  try {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new StageError("TOKEN_INVALID", "not a participant token");
  }
}

/**
 * Someone in the stage, as the events WebSocket describes them.
 * `stream` is the MediaStream to show (the camera for the local
 * participant, the subscription for others), or null.
 */
export class Participant {
  constructor(id, isLocal) {
    /** @type {string} */ this.id = id;
    /** @type {boolean} */ this.isLocal = isLocal;
    /** @type {string} */ this.userId = "";
    /** @type {Object<string,string>} */ this.attributes = {};
    /** @type {string} "UNKNOWN" for browsers, "WHIP" for encoders such as OBS */ this.protocol = "";
    /** @type {string} */ this.joinedAt = "";
    /** @type {boolean} */ this.publishing = false;
    /** @type {{kind: string, codec: string, muted?: boolean}[]} what it publishes; muted as its client says */ this.tracks = [];
    /** @type {string[]} what its token allows: "PUBLISH", "SUBSCRIBE" */ this.capabilities = [];
    /** @type {MediaStream|null} */ this.stream = null;
    /** @type {boolean} speaking now, as the server hears its audio */ this.speaking = false;
    /** @type {number} its level while it speaks, in dBov (0 is the loudest) */ this.audioLevel = -127;
  }

  /** The name to show: the userId, or else the participant id. */
  get name() {
    return this.userId || this.id;
  }
}

/**
 * One participant token's presence in a stage.
 */
export class Stage extends EventTarget {
  #token;
  #claims;
  #opts;
  #state = "new";
  #ended = false;

  #ws = null;
  #everJoined = false;
  #attempt = 0;
  #reconnectTimer = 0;
  #pingTimer = 0;
  #lastHeard = 0;
  #joinWaiter = null;
  #info = null; // the joined message

  #participants = new Map(); // id → Participant
  #local;
  #localStream = null;
  #ownsLocalStream = false;
  #micMuted = false;
  #camMuted = false;

  #pub = null; // {pc, location, sender (of the simulcast video), senders (by kind), shape, full, layering}
  #pubState = "not_published";
  // What publishTracks asked for: [{track, encodings, muted}], [] for
  // nothing; null publishes the camera and microphone (localStream).
  #tracks = null;
  #toldMuted = ""; // the mute state last told on this WebSocket
  #pubAttempt = 0;
  #pubTimer = 0;
  #simulcastRefused = false; // the server takes no simulcast: one layer
  #neededLayers = null; // the rids of the last publishLayers, or null: all
  #subs = new Map(); // publisher id → {pc, location, stream, announced, attempt, timer, kinds, publisherKinds, state}
  #videoSizes = new Map(); // publisher id → {width, height}, as the app shows it
  #subStates = new Map(); // publisher id → the subscription's state, but "not_subscribed"
  #subRefused = new Set(); // publishers whose subscription was refused for good (until refresh, an exchange, a republish)
  #sentSizes = new Map(); // publisher id → "WxH" told on this WebSocket of its subscription
  #attached = new Map(); // publisher id → Map(video element → {width, height, stop})
  #layers = new Map(); // publisher id → its last layers message
  #preferred = new Map(); // publisher id → the rid asked for (setPreferredLayer)

  #exchanging = Promise.resolve(); // the exchanges, one at a time
  #exchangeWaiter = null; // {resolve, reject} of the one sent

  /**
   * @param {string} token  a participant token (CreateParticipantToken)
   * @param {object} [options]
   * @param {boolean} [options.publish=true]  publish when the token allows it
   * @param {boolean} [options.subscribe=true]  watch every publisher when the token allows it
   * @param {(participant: Participant) => "none"|"audio"|"audioVideo"} [options.subscription]  what to
   *     receive of each publisher (by default everything): asked as publishers come, and on refresh()
   * @param {(participant: Participant) => "lowest"|"highest"|""} [options.initialLayer]  the simulcast
   *     layer the first picture of each subscription comes from; "" (the default) lets the server choose
   * @param {boolean|MediaTrackConstraints} [options.audio=true]  microphone constraints
   * @param {boolean|MediaTrackConstraints} [options.video=true]  camera constraints
   * @param {MediaStream} [options.mediaStream]  publish this stream instead of asking for the camera
   * @param {RTCConfiguration} [options.rtcConfiguration]  for every peer connection; the server's TURN servers are added to its iceServers
   * @param {boolean} [options.reconnect=true]  reconnect a dropped WebSocket while the token is valid
   * @param {boolean} [options.simulcast=true]  publish the camera in three layers (fewer for a small one),
   *     which the server picks from for each subscriber; false publishes one
   */
  constructor(token, options = {}) {
    super();
    this.#token = String(token || "").trim();
    this.#claims = decodeToken(this.#token);
    this.#opts = {
      publish: true, subscribe: true, audio: true, video: true, reconnect: true, simulcast: true,
      rtcConfiguration: {}, ...options,
    };
    this.#local = new Participant(this.#claims.jti || "", true);
    this.#local.userId = this.#claims.user_id || "";
    this.#local.attributes = this.#claims.attributes || {};
  }

  /** The token's claims. */
  get claims() { return this.#claims; }
  /** "new", "connecting", "connected", "reconnecting" or "disconnected". */
  get connectionState() { return this.#state; }
  /** The local participant. */
  get localParticipant() { return this.#local; }
  /** Everyone in the stage, the local participant included, in order of joining. */
  get participants() { return [...this.#participants.values()]; }
  /** The camera and microphone being published, or null. */
  get localStream() { return this.#localStream; }
  get participantId() { return this.#local.id; }
  get stageArn() { return this.#claims.resource; }
  /** The stage session of the last join. */
  get sessionId() { return this.#info ? this.#info.sessionId : ""; }
  get canPublish() { return this.#can("allow_publish"); }
  get canSubscribe() { return this.#can("allow_subscribe"); }
  /** The publication's state: "not_published", "attempting", "published" or "errored". */
  get publishState() { return this.#pubState; }
  get microphoneMuted() { return this.#micMuted; }
  get cameraMuted() { return this.#camMuted; }

  /**
   * Calls listener for events of type; returns a function that removes it.
   * @param {string} type
   * @param {(detail: any, event: CustomEvent) => void} listener
   */
  on(type, listener) {
    const fn = (e) => listener(e.detail, e);
    this.addEventListener(type, fn);
    return () => this.removeEventListener(type, fn);
  }

  /**
   * Takes the camera and microphone (when publishing), joins the stage and
   * resolves once joined; publishing and subscribing follow. Rejects with
   * a StageError if the server refuses the token or cannot be reached.
   */
  async join() {
    if (this.#state !== "new") throw new StageError("INVALID_STATE", "join() may be called once");
    this.#setState("connecting");
    if (this.#opts.publish && this.canPublish) {
      try {
        await this.#openMedia();
      } catch (err) {
        this.#emit("error", { error: err });
      }
    }
    if (this.#ended) throw new StageError(LEFT, "left before joining");
    const joined = new Promise((resolve, reject) => { this.#joinWaiter = { resolve, reject }; });
    this.#connect();
    return joined;
  }

  /** Leaves the stage: closes the WebSocket, the publication and every subscription. */
  leave() {
    this.#end(LEFT, "left the stage");
  }

  /** Mutes (sends silence) or unmutes the microphone. */
  setMicrophoneMuted(muted) {
    this.#micMuted = !!muted;
    this.#applyMute();
  }

  /** Mutes (sends black frames) or unmutes the camera. */
  setCameraMuted(muted) {
    this.#camMuted = !!muted;
    this.#applyMute();
  }

  /**
   * Publishes these tracks instead of the camera and microphone, at most
   * one of each kind; an empty list stops publishing. A muted track sends
   * nothing, and subscribers are told it is muted. A list of the same
   * kinds and layers as the one published changes the tracks in the
   * same session (a camera switched, a track muted), without a new
   * negotiation; another one is a new publication.
   * @param {{track: MediaStreamTrack, encodings?: RTCRtpEncodingParameters[], muted?: boolean}[]} list
   *     encodings: the layers of a video track, lowest first, with rids "q", "h", "f" (the last
   *     ones of those, for fewer layers); or one encoding's limits; none: as the camera is sent
   */
  publishTracks(list) {
    const entries = [];
    for (const e of list || []) {
      if (!e || !e.track) continue;
      if (entries.some((o) => o.track.kind === e.track.kind)) {
        throw new StageError("INVALID_INPUT", "at most one " + e.track.kind + " track may be published");
      }
      const encodings = e.encodings ? e.encodings.map((enc) => ({ ...enc })) : defaultEncodings(e.track, this.#opts.simulcast);
      entries.push({ track: e.track, encodings, muted: !!e.muted });
    }
    const before = this.#tracks;
    this.#tracks = entries;
    this.#sendMute();
    if (this.#ended) return;
    const pub = this.#pub;
    if (!entries.length) {
      clearTimeout(this.#pubTimer);
      this.#closePublication(true);
      return;
    }
    if (pub && before && shapeOf(before, this.#simulcastRefused) === shapeOf(entries, this.#simulcastRefused)) {
      this.#updateSenders(pub);
      return;
    }
    this.#publish();
  }

  /**
   * The RTCRtpSender that publishes the given kind of media, or null.
   * @param {"audio"|"video"} kind
   */
  senderOf(kind) {
    return (this.#pub && this.#pub.senders && this.#pub.senders.get(kind)) || null;
  }

  /**
   * The RTCRtpReceiver of a track received from a publisher, or null.
   * @param {MediaStreamTrack} track
   */
  receiverOf(track) {
    for (const sub of this.#subs.values()) {
      const r = sub.pc && sub.pc.getReceivers().find((x) => x.track === track);
      if (r) return r;
    }
    return null;
  }

  /**
   * Asks the subscription option again of every publisher, subscribing,
   * changing or ending subscriptions as it answers.
   */
  refresh() {
    this.#subRefused.clear();
    this.#reconcile();
  }

  /**
   * Tells the server the size, in device pixels (CSS pixels times
   * devicePixelRatio), at which the app shows a publisher's video, so
   * that it forwards the simulcast layer that fits; 0×0 is not shown.
   * It is told while subscribed to the publisher, once per change, and
   * again after a reconnection or a new subscription. Without it the
   * server forwards the best layer.
   * @param {string} participantId  the publisher
   * @param {number} width
   * @param {number} height
   */
  setVideoSize(participantId, width, height) {
    const id = String(participantId);
    const size = (n) => Math.max(0, Math.round(Number(n) || 0));
    this.#videoSizes.set(id, { width: size(width), height: size(height) });
    this.#sendVideoSize(id);
  }

  /**
   * Asks for one simulcast layer of a publisher's video (its rid, as
   * layerschange tells them), whatever the size it is shown at and the
   * bandwidth; "" or null lets the server choose again. Kept for later
   * subscriptions to the publisher, and told again after a reconnection.
   * @param {string} participantId  the publisher
   * @param {string|null} rid
   */
  setPreferredLayer(participantId, rid) {
    const id = String(participantId);
    rid = rid ? String(rid) : "";
    if ((this.#preferred.get(id) || "") === rid) return;
    if (rid) this.#preferred.set(id, rid);
    else this.#preferred.delete(id);
    this.#sendPreferred(id, rid);
  }

  /**
   * The layers of a simulcast publisher's video as the server last told
   * them: {layers: [{rid, width, height, bitrateBps, framesPerSecond,
   * active}], selected, preferred}, lowest first; null without any.
   * @param {string} participantId
   */
  layersOf(participantId) {
    const m = this.#layers.get(String(participantId));
    return m ? { layers: m.layers || [], selected: m.selected || "", preferred: m.preferred || "" } : null;
  }

  #sendPreferred(id, rid) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.#state !== "connected") return;
    ws.send(JSON.stringify({ type: "preferLayer", participantId: id, rid }));
  }

  /**
   * Follows the size at which a <video> element shows a publisher (its box,
   * or the picture's part of it as its object-fit places it) and tells it
   * with setVideoSize as it changes; a hidden or removed element is 0×0.
   * A publisher shown in several elements gets the largest. Returns a
   * function that stops following the element.
   * @param {string} participantId  the publisher
   * @param {HTMLVideoElement} video
   * @returns {() => void}
   */
  attachVideo(participantId, video) {
    const id = String(participantId);
    let shown = this.#attached.get(id);
    if (!shown) this.#attached.set(id, (shown = new Map()));
    if (shown.has(video)) shown.get(video).stop();
    let box = { width: 0, height: 0 };
    const entry = { width: 0, height: 0, stop: null };
    const update = () => {
      if (shown.get(video) !== entry) return;
      Object.assign(entry, shownSize(video, box));
      this.#sendAttached(id);
    };
    const observer = new ResizeObserver((entries) => {
      box = entries[entries.length - 1].contentRect;
      update();
    });
    entry.stop = () => {
      observer.disconnect();
      video.removeEventListener("resize", update);
      if (shown.get(video) !== entry) return;
      shown.delete(video);
      if (!shown.size && this.#attached.get(id) === shown) this.#attached.delete(id);
      this.#sendAttached(id);
    };
    shown.set(video, entry);
    observer.observe(video);
    // The picture's shape, once known, places it in the box.
    video.addEventListener("resize", update);
    return entry.stop;
  }

  // #sendAttached tells the largest size of the elements showing a
  // publisher; none is 0×0.
  #sendAttached(id) {
    let width = 0;
    let height = 0;
    for (const e of (this.#attached.get(id) || new Map()).values()) {
      width = Math.max(width, e.width);
      height = Math.max(height, e.height);
    }
    this.setVideoSize(id, width, height);
  }

  // #sendVideoSize tells the server the size a publisher is shown at, if
  // the app gave one, it is subscribed to and it was not told already.
  #sendVideoSize(id) {
    const size = this.#videoSizes.get(id);
    const sub = this.#subs.get(id);
    const ws = this.#ws;
    if (!size || !sub || !sub.location || !ws || ws.readyState !== WebSocket.OPEN || this.#state !== "connected") return;
    const told = size.width + "x" + size.height;
    if (this.#sentSizes.get(id) === told) return;
    this.#sentSizes.set(id, told);
    ws.send(JSON.stringify({ type: "videoSize", participantId: id, width: size.width, height: size.height }));
  }

  /**
   * Exchanges the participant's token for another, without leaving the
   * stage (docs/protocol.md, "Token exchange"): both must be self-signed,
   * with the same jti, topic, resource, whip_url and events_url. Losing
   * the publish capability stops publishing at once, losing subscribe ends
   * every subscription; gaining one starts what the options ask for.
   * Reconnections use the new token. Resolves with what the participant
   * now is; rejects with a StageError (the stage goes on unchanged).
   * @param {string} token
   * @returns {Promise<{userId: string, attributes: Object<string,string>, capabilities: string[], expirationTime: string}>}
   */
  exchangeToken(token) {
    const next = this.#exchanging.then(() => this.#exchangeNow(String(token || "").trim()));
    this.#exchanging = next.catch(() => {});
    return next;
  }

  async #exchangeNow(token) {
    if (this.#ended) throw new StageError("INVALID_STATE", "the stage was left");
    const claims = decodeToken(token);
    for (const name of ["jti", "topic", "resource", "whip_url", "events_url"]) {
      if (claims[name] !== this.#claims[name]) {
        throw new StageError("TOKEN_EXCHANGE_REFUSED", `the new token's ${name} differs: it may not change`);
      }
    }
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.#state !== "connected") {
      throw new StageError("INVALID_STATE", "not connected to the stage");
    }
    const answer = await new Promise((resolve, reject) => {
      this.#exchangeWaiter = { resolve, reject, ws };
      ws.send(JSON.stringify({ type: "exchangeToken", token }));
    });
    this.#token = token;
    this.#claims = claims;
    this.#local.userId = answer.userId || "";
    this.#local.attributes = answer.attributes || {};
    this.#emit("tokenexchanged", {
      userId: this.#local.userId, attributes: this.#local.attributes,
      capabilities: answer.capabilities || [], expirationTime: answer.expirationTime,
    });
    this.#emit("participantupdated", { participant: this.#local });
    this.#subRefused.clear();
    if (!this.canPublish) {
      clearTimeout(this.#pubTimer);
      this.#closePublication(true);
    } else if (this.#opts.publish && !this.#pub) {
      if (!this.#localStream) {
        try {
          await this.#openMedia();
        } catch (err) {
          this.#emit("error", { error: err });
        }
      }
      this.#publish();
    }
    this.#reconcile();
    return { userId: this.#local.userId, attributes: this.#local.attributes, capabilities: answer.capabilities || [],
      expirationTime: answer.expirationTime };
  }

  // #settleExchange answers the exchange waiting on ws, if any.
  #settleExchange(ws, m, err) {
    const w = this.#exchangeWaiter;
    if (!w || w.ws !== ws) return;
    this.#exchangeWaiter = null;
    if (err) w.reject(err);
    else w.resolve(m);
  }

  // --- the events WebSocket -------------------------------------------

  #connect() {
    if (this.#ended) return;
    let url;
    try {
      url = new URL(this.#claims.events_url);
    } catch {
      this.#end("TOKEN_INVALID", "the token has no events_url");
      return;
    }
    url.searchParams.set("access_token", this.#token);
    // What GetParticipant shows as sdkVersion; the browser's User-Agent
    // tells the rest.
    url.searchParams.set("sdk_version", SDK_VERSION);
    const ws = new WebSocket(url.href);
    this.#ws = ws;
    let joined = false;
    let final = null; // {code, message} from an error or disconnected message
    ws.onmessage = (e) => {
      if (this.#ws !== ws) return;
      this.#lastHeard = Date.now();
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      switch (m.type) {
        case "joined":
          joined = true;
          this.#onJoined(m);
          break;
        case "state":
          this.#onState(m);
          break;
        case "error":
          final = { code: m.code, message: m.message };
          break;
        case "disconnected":
          // A server shutting down may be back soon: that is a drop, not an end.
          if (m.code !== "SHUTTING_DOWN") final = { code: m.code, message: m.message };
          break;
        case "activeSpeakers":
          this.#onSpeakers(m.speakers || []);
          break;
        case "publishLayers":
          if (Array.isArray(m.rids)) {
            this.#neededLayers = m.rids.map(String);
            this.#applyLayers();
          }
          break;
        case "layers":
          this.#onLayers(m);
          break;
        case "tokenExchanged":
          this.#settleExchange(ws, m, null);
          break;
        case "exchangeTokenError":
          this.#settleExchange(ws, null, new StageError(m.code, m.message));
          break;
      }
    };
    ws.onclose = (e) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      // The server may have taken the exchange or not: the caller retries.
      this.#settleExchange(ws, null, new StageError(CONNECTION_LOST, "the connection dropped during the token exchange"));
      clearInterval(this.#pingTimer);
      if (!final && finalCloseCodes[e.code]) final = { code: finalCloseCodes[e.code], message: e.reason };
      this.#onDrop(final, joined);
    };
  }

  #onJoined(m) {
    this.#info = m;
    this.#everJoined = true;
    this.#attempt = 0;
    this.#local.id = m.participantId;
    if (m.userId) this.#local.userId = m.userId;
    if (m.attributes) this.#local.attributes = m.attributes;
    if (!this.#participants.has(this.#local.id)) {
      this.#participants.set(this.#local.id, this.#local);
      this.#emit("participantjoined", { participant: this.#local });
    }
    this.#startPing(m.pingIntervalMs || 5000);
    this.#setState("connected");
    // A new WebSocket: every layer is sent until the server tells which it
    // needs, and it is told again the sizes the publishers are shown at.
    this.#neededLayers = null;
    this.#applyLayers();
    this.#sentSizes.clear();
    for (const id of this.#subs.keys()) this.#sendVideoSize(id);
    this.#toldMuted = "";
    this.#sendMute();
    for (const [id, rid] of this.#preferred) this.#sendPreferred(id, rid);
    this.#emit("joined", { participantId: m.participantId, sessionId: m.sessionId, stageArn: m.stageArn });
    if (this.#joinWaiter) {
      this.#joinWaiter.resolve(this);
      this.#joinWaiter = null;
    }
    const pc = this.#pub && this.#pub.pc;
    if (!pc || pc.connectionState === "failed" || pc.connectionState === "closed") this.#publish();
  }

  #onDrop(final, joined) {
    if (this.#ended) return;
    if (final) {
      this.#end(final.code, final.message);
      return;
    }
    if (!this.#everJoined) {
      this.#end(CONNECTION_FAILED, "could not connect to the stage");
      return;
    }
    if (!this.#opts.reconnect || !this.#mayRejoin()) {
      this.#end(CONNECTION_LOST, "the connection to the stage was lost");
      return;
    }
    this.#setState("reconnecting");
    const delay = joined ? 0 : backoff(this.#attempt++);
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  // A token may rejoin before it expires, or after while its participant
  // is still in the stage (its media flows).
  #mayRejoin() {
    if (!this.#claims.exp || Date.now() < this.#claims.exp * 1000) return true;
    const live = (pc) => pc && pc.connectionState === "connected";
    if (this.#pub && live(this.#pub.pc)) return true;
    for (const s of this.#subs.values()) if (live(s.pc)) return true;
    return false;
  }

  // The server pings too, but a browser cannot see those: its own pings
  // tell a half-open connection (a vanished network) from a quiet one.
  #startPing(intervalMs) {
    clearInterval(this.#pingTimer);
    this.#lastHeard = Date.now();
    const ws = this.#ws;
    this.#pingTimer = setInterval(() => {
      if (this.#ws !== ws) return;
      if (Date.now() - this.#lastHeard > 3 * intervalMs) {
        this.#ws = null;
        clearInterval(this.#pingTimer);
        ws.onclose = ws.onmessage = null;
        ws.close();
        this.#settleExchange(ws, null, new StageError(CONNECTION_LOST, "the connection dropped during the token exchange"));
        this.#onDrop(null, false);
        return;
      }
      if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
    }, intervalMs);
  }

  #onState(m) {
    const seen = new Set();
    for (const w of m.participants || []) {
      seen.add(w.participantId);
      let p = this.#participants.get(w.participantId);
      const isNew = !p;
      if (isNew) {
        p = w.participantId === this.#local.id ? this.#local : new Participant(w.participantId, false);
        this.#participants.set(p.id, p);
      }
      const before = JSON.stringify([p.userId, p.attributes, p.protocol, p.tracks, p.capabilities]);
      p.userId = w.userId || "";
      p.attributes = w.attributes || {};
      p.protocol = w.protocol || "";
      p.joinedAt = w.joinedAt || "";
      p.tracks = w.tracks || [];
      p.capabilities = w.capabilities || [];
      const publishing = !!w.publishing;
      if (isNew) this.#emit("participantjoined", { participant: p });
      else if (before !== JSON.stringify([p.userId, p.attributes, p.protocol, p.tracks, p.capabilities])) {
        this.#emit("participantupdated", { participant: p });
      }
      if (publishing !== p.publishing) {
        p.publishing = publishing;
        this.#subRefused.delete(p.id);
        this.#emit(publishing ? "participantpublished" : "participantunpublished", { participant: p });
      }
    }
    for (const [id, p] of this.#participants) {
      if (seen.has(id) || p.isLocal) continue;
      this.#unsubscribe(id);
      this.#subRefused.delete(id);
      this.#participants.delete(id);
      this.#emit("participantleft", { participant: p });
    }
    // Keep the stage's order of joining.
    const order = (m.participants || []).map((w) => w.participantId);
    this.#participants = new Map([...this.#participants].sort((a, b) => rank(order, a[0]) - rank(order, b[0])));
    this.#reconcile();
  }

  #onLayers(m) {
    const id = String(m.participantId || "");
    if (!this.#subs.has(id)) return;
    this.#layers.set(id, m);
    const participant = this.#participants.get(id) || { id };
    this.#emit("layerschange", { participant, ...this.layersOf(id) });
  }

  #onSpeakers(list) {
    const speaking = new Map(list.map((s) => [s.participantId, s.level]));
    for (const p of this.#participants.values()) {
      p.speaking = speaking.has(p.id);
      p.audioLevel = p.speaking ? speaking.get(p.id) : -127;
    }
    const speakers = list.map((s) => this.#participants.get(s.participantId)).filter(Boolean);
    this.#emit("activespeakers", { speakers });
  }

  // --- publishing: WHIP ------------------------------------------------

  async #openMedia() {
    if (this.#opts.mediaStream) {
      this.#localStream = this.#opts.mediaStream;
    } else {
      this.#localStream = await navigator.mediaDevices.getUserMedia({
        audio: this.#opts.audio, video: this.#opts.video,
      });
      this.#ownsLocalStream = true;
    }
    this.#applyMute();
    this.#local.stream = this.#localStream;
    this.#emit("streamadded", { participant: this.#local, stream: this.#localStream });
  }

  // #publishing is what to publish: publishTracks' list, or else the
  // camera and microphone.
  #publishing() {
    if (this.#tracks) return this.#tracks;
    if (!this.#localStream) return [];
    return this.#localStream.getTracks().map((track) => ({ track, encodings: defaultEncodings(track, this.#opts.simulcast), muted: false }));
  }

  async #publish() {
    clearTimeout(this.#pubTimer);
    const entries = this.#publishing();
    if (this.#ended || !entries.length || !this.#info || !this.canPublish) return;
    this.#closePublication(false);
    const pc = new RTCPeerConnection(this.#rtcConfiguration());
    // given: the track each kind's sender was last given (null: muted).
    const pub = { pc, location: null, sender: null, senders: new Map(), given: new Map(), full: null, layering: Promise.resolve() };
    this.#pub = pub;
    this.#setPubState("attempting");
    // A new publication sends every layer until the server tells which it needs.
    this.#neededLayers = null;
    const stream = this.#localStream || new MediaStream(entries.map((e) => e.track));
    const muting = [];
    for (const e of entries) {
      const init = { direction: "sendonly", streams: [stream] };
      let encodings = e.encodings;
      if (encodings && encodings.length > 1 && this.#simulcastRefused) {
        // One layer: the top one's limits, at full size.
        const { rid, scaleResolutionDownBy, ...top } = encodings[encodings.length - 1];
        encodings = [top];
      }
      if (encodings) init.sendEncodings = encodings.map((x) => ({ ...x }));
      const transceiver = pc.addTransceiver(e.track, init);
      pub.senders.set(e.track.kind, transceiver.sender);
      pub.given.set(e.track.kind, e.muted ? null : e.track);
      if (encodings && encodings.length > 1) {
        pub.sender = transceiver.sender;
        pub.full = encodings[encodings.length - 1];
      }
      if (e.muted) muting.push(transceiver.sender.replaceTrack(null));
    }
    pc.addEventListener("connectionstatechange", () => {
      if (this.#pub !== pub) return;
      if (pc.connectionState === "connected") {
        this.#pubAttempt = 0;
        this.#setPubState("published");
      }
      this.#watchConnection(pub, () => this.#pub === pub, () => this.#retryPublish());
    });
    // Later changes of the senders wait for these.
    pub.layering = Promise.all(muting).then(() => {}, () => {});
    try {
      await pub.layering;
      const location = await this.#exchange(this.#info.whipUrl || this.#claims.whip_url, pc);
      if (this.#pub !== pub) {
        release(location);
        return;
      }
      pub.location = location;
      this.#applyLayers();
    } catch (err) {
      if (this.#pub !== pub) return;
      if (pub.sender && err.status === 400 && /simulcast/i.test(err.message)) {
        // A server that takes no simulcast: one layer, at once.
        this.#simulcastRefused = true;
        this.#publish();
        return;
      }
      this.#setPubState("errored", err);
      this.#emit("error", { error: err });
      if (!fatalMediaCodes.has(err.code)) {
        this.#retryPublish();
        return;
      }
      // Retrying cannot help: the publication is dropped (its state stays
      // errored), and the next publishTracks, exchange or join makes another.
      this.#pub = null;
      pc.close();
    }
  }

  // #updateSenders gives a publication's senders the tracks of
  // publishTracks' list (none while muted) and its encodings' limits.
  #updateSenders(pub) {
    const entries = this.#tracks || [];
    pub.layering = pub.layering.then(async () => {
      for (const e of entries) {
        const sender = pub.senders.get(e.track.kind);
        if (!sender || this.#pub !== pub) continue;
        const track = e.muted ? null : e.track;
        if (pub.given.get(e.track.kind) !== track) {
          pub.given.set(e.track.kind, track);
          await sender.replaceTrack(track);
        }
        if (!e.encodings) continue;
        const params = sender.getParameters();
        let changed = false;
        params.encodings.forEach((enc, i) => {
          const want = e.encodings.length === params.encodings.length ? e.encodings[i] : e.encodings[e.encodings.length - 1];
          for (const key of ["maxBitrate", "maxFramerate"]) {
            if (want[key] !== undefined && enc[key] !== want[key]) {
              enc[key] = want[key];
              changed = true;
            }
          }
        });
        if (changed) await sender.setParameters(params);
      }
    }).catch(() => {
      // closed meanwhile
    });
  }

  #setPubState(state, error) {
    if (this.#pubState === state) return;
    this.#pubState = state;
    this.#emit("publishstatechange", { state, error: error || null });
  }

  // #applyLayers pauses the simulcast layers the server does not need
  // (its publishLayers) and resumes those it needs again, once the
  // publication is made; the lowest layer is always sent.
  #applyLayers() {
    const pub = this.#pub;
    if (!pub || !pub.sender || !pub.location) return;
    pub.layering = pub.layering.then(async () => {
      if (this.#pub !== pub) return;
      const needed = this.#neededLayers;
      const params = pub.sender.getParameters();
      let changed = false;
      params.encodings.forEach((e, i) => {
        const active = i === 0 || !needed || needed.includes(e.rid);
        if (e.active !== active) {
          e.active = active;
          changed = true;
        }
      });
      const [only] = params.encodings;
      if (params.encodings.length === 1 && only.scaleResolutionDownBy !== 1 && pub.full) {
        // An answer without simulcast leaves the lowest layer: it is sent whole.
        only.scaleResolutionDownBy = pub.full.scaleResolutionDownBy || 1;
        if (pub.full.maxBitrate) only.maxBitrate = pub.full.maxBitrate;
        if (pub.full.maxFramerate) only.maxFramerate = pub.full.maxFramerate;
        changed = true;
      }
      if (changed) await pub.sender.setParameters(params);
    }).catch(() => {
      // closed meanwhile; otherwise the next publishLayers tries again
    });
  }

  #retryPublish() {
    if (this.#ended) return;
    this.#setPubState("errored");
    clearTimeout(this.#pubTimer);
    this.#pubTimer = setTimeout(() => this.#publish(), backoff(this.#pubAttempt++));
  }

  // #closePublication ends the publication; final when no other follows
  // at once.
  #closePublication(final) {
    const pub = this.#pub;
    this.#pub = null;
    if (final) this.#setPubState("not_published");
    if (!pub) return;
    pub.pc.close();
    release(pub.location);
  }

  #applyMute() {
    this.#sendMute();
    if (!this.#localStream) return;
    for (const t of this.#localStream.getAudioTracks()) t.enabled = !this.#micMuted;
    for (const t of this.#localStream.getVideoTracks()) t.enabled = !this.#camMuted;
    this.#emit("mutechange", { microphoneMuted: this.#micMuted, cameraMuted: this.#camMuted });
  }

  // #sendMute tells the server what is muted, when that changed.
  #sendMute() {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.#state !== "connected") return;
    const muted = { audio: this.#micMuted, video: this.#camMuted };
    if (this.#tracks) {
      muted.audio = muted.video = false;
      for (const e of this.#tracks) muted[e.track.kind] = e.muted;
    }
    const told = JSON.stringify(muted);
    if (told === this.#toldMuted) return;
    this.#toldMuted = told;
    for (const kind of ["audio", "video"]) ws.send(JSON.stringify({ type: "mute", kind, muted: muted[kind] }));
  }

  // --- subscribing: WHEP ----------------------------------------------

  // Subscribes to publishers as the subscription option says and drops
  // subscriptions to those who stopped, or that should now receive other
  // kinds of media.
  #reconcile() {
    if (this.#ended) return;
    for (const p of this.#participants.values()) {
      if (p.isLocal || !p.publishing) continue;
      const kinds = this.#kindsFor(p);
      const sub = this.#subs.get(p.id);
      if (sub && sub.kinds !== kinds) this.#unsubscribe(p.id);
      if (kinds && !this.#subs.has(p.id) && !this.#subRefused.has(p.id)) this.#subscribe(p.id, 0, kinds);
    }
    for (const id of [...this.#subs.keys()]) {
      const p = this.#participants.get(id);
      if (!p || !p.publishing) this.#unsubscribe(id);
    }
  }

  // #kindsFor is what to receive of a publisher: "audio", "video",
  // "audio,video", or "" for nothing. It is what the subscription option
  // asks for of what the publisher sends.
  #kindsFor(p) {
    if (!this.#opts.subscribe || !this.canSubscribe) return "";
    let wanted = ["audio", "video"];
    if (typeof this.#opts.subscription === "function") {
      let answer;
      try {
        answer = this.#opts.subscription(p);
      } catch (err) {
        console.error("ivsrt: the subscription option threw", err);
        answer = "none";
      }
      wanted = answer === "audio" ? ["audio"] : answer === "audioVideo" ? wanted : [];
    }
    const sent = new Set((p.tracks || []).map((t) => t.kind));
    return wanted.filter((k) => !sent.size || sent.has(k)).join(",");
  }

  async #subscribe(id, attempt, kinds) {
    if (this.#ended || !this.#info) return;
    const pc = new RTCPeerConnection(this.#rtcConfiguration());
    const sub = { pc, location: null, stream: new MediaStream(), announced: false, attempt, timer: 0, kinds };
    this.#subs.set(id, sub);
    this.#setSubState(id, "attempting");
    for (const kind of kinds.split(",")) pc.addTransceiver(kind, { direction: "recvonly" });
    pc.addEventListener("track", (e) => sub.stream.addTrack(e.track));
    pc.addEventListener("connectionstatechange", () => {
      if (this.#subs.get(id) !== sub) return;
      if (pc.connectionState === "connected") {
        sub.attempt = 0;
        this.#setSubState(id, "subscribed");
      }
      if (pc.connectionState === "closed") this.#retrySubscribe(id, sub);
      else this.#watchConnection(sub, () => this.#subs.get(id) === sub, () => this.#retrySubscribe(id, sub));
    });
    try {
      const location = await this.#exchange(this.#info.whepUrl + encodeURIComponent(id) + this.#initialLayerQuery(id), pc);
      if (this.#subs.get(id) !== sub) {
        release(location);
        return;
      }
      sub.location = location;
      this.#sentSizes.delete(id);
      this.#sendVideoSize(id);
      const p = this.#participants.get(id);
      if (p) {
        sub.announced = true;
        p.stream = sub.stream;
        this.#emit("streamadded", { participant: p, stream: sub.stream, peerConnection: pc });
      }
    } catch (err) {
      if (this.#subs.get(id) !== sub) return;
      if (err.code !== "PUBLISHER_NOT_FOUND") this.#emit("error", { error: err });
      if (!fatalMediaCodes.has(err.code)) this.#retrySubscribe(id, sub, err);
      else {
        this.#unsubscribe(id, false);
        this.#subRefused.add(id);
        this.#setSubState(id, "errored", err);
      }
    }
  }

  // #initialLayerQuery is the WHEP query asking for the initial layer
  // option's answer for a publisher, "" if none.
  #initialLayerQuery(id) {
    const p = this.#participants.get(id);
    if (typeof this.#opts.initialLayer !== "function" || !p) return "";
    let layer = "";
    try {
      layer = this.#opts.initialLayer(p) || "";
    } catch (err) {
      console.error("ivsrt: the initialLayer option threw", err);
    }
    if (layer !== "lowest" && layer !== "highest") {
      if (layer) console.error(`ivsrt: initialLayer ${JSON.stringify(layer)} is not "lowest" nor "highest"; the server chooses`);
      return "";
    }
    return "?initialLayer=" + layer;
  }

  // Subscribes again, later, while the publisher still publishes.
  #retrySubscribe(id, sub, err) {
    if (this.#ended) return;
    const attempt = sub.attempt + 1;
    this.#unsubscribe(id, false);
    this.#setSubState(id, "errored", err);
    const retry = { pc: null, location: null, stream: null, announced: false, attempt, timer: 0, kinds: sub.kinds };
    this.#subs.set(id, retry);
    retry.timer = setTimeout(() => {
      if (this.#subs.get(id) !== retry) return;
      this.#subs.delete(id);
      const p = this.#participants.get(id);
      const kinds = p && p.publishing ? this.#kindsFor(p) : "";
      if (kinds) this.#subscribe(id, attempt, kinds);
      else this.#setSubState(id, "not_subscribed");
    }, backoff(attempt));
  }

  // #unsubscribe ends the subscription to a publisher; final when no
  // other follows at once.
  #unsubscribe(id, final = true) {
    const sub = this.#subs.get(id);
    if (!sub) return;
    this.#subs.delete(id);
    this.#sentSizes.delete(id);
    this.#layers.delete(id);
    clearTimeout(sub.timer);
    if (sub.pc) sub.pc.close();
    release(sub.location);
    if (sub.announced) {
      const p = this.#participants.get(id);
      if (p && p.stream === sub.stream) p.stream = null;
      this.#emit("streamremoved", { participant: p || { id }, stream: sub.stream });
    }
    if (final) this.#setSubState(id, "not_subscribed");
  }

  #setSubState(id, state, error) {
    if ((this.#subStates.get(id) || "not_subscribed") === state) return;
    if (state === "not_subscribed") this.#subStates.delete(id);
    else this.#subStates.set(id, state);
    const participant = this.#participants.get(id) || { id };
    this.#emit("subscribestatechange", { participant, state, error: error || null });
  }

  // --- shared ---------------------------------------------------------

  // #watchConnection follows a session's connection: one that stays
  // disconnected for a moment, or fails, lost its network path (a new
  // address, Wi-Fi to cellular): ICE is restarted in the same session
  // (PATCH, RFC 9725, section 4.3.2); if that cannot be done, or a few
  // restarts did not help, retry makes a new session. current reports
  // whether the session is still the one in use.
  #watchConnection(entry, current, retry) {
    const pc = entry.pc;
    clearTimeout(entry.restartTimer);
    const recover = async () => {
      if (!current() || this.#ended || entry.restarting) return;
      if ((entry.restarts || 0) >= maxRestarts) {
        retry();
        return;
      }
      entry.restarting = true;
      entry.restarts = (entry.restarts || 0) + 1;
      try {
        await this.#restartIce(pc, entry.location);
      } catch {
        if (current()) retry();
      } finally {
        entry.restarting = false;
      }
    };
    switch (pc.connectionState) {
      case "connected":
        entry.restarts = 0;
        break;
      case "disconnected":
        entry.restartTimer = setTimeout(() => pc.connectionState === "disconnected" && recover(), disconnectedRestartMs);
        break;
      case "failed":
        recover();
        break;
    }
  }

  // #restartIce restarts a session's ICE: the new offer's credentials and
  // candidates go in a PATCH of the session, whose answer carries the
  // server's; they become the remote description, the rest of it unchanged.
  async #restartIce(pc, location) {
    if (!location) throw new StageError("SESSION_ENDED", "no session to restart");
    await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
    await iceGathered(pc);
    const lines = pc.localDescription.sdp.split(/\r?\n/);
    const pick = (prefix) => lines.filter((l) => l.startsWith(prefix));
    const frag = [pick("a=ice-ufrag:")[0], pick("a=ice-pwd:")[0], "m=audio 9 UDP/TLS/RTP/SAVPF 0", pick("a=mid:")[0] || "a=mid:0",
      ...pick("a=candidate:"), "a=end-of-candidates"].join("\r\n") + "\r\n";
    // After a network change the first request may go out on a pooled
    // connection of the old network, and fail: it is sent again.
    let res;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await fetch(location, {
          method: "PATCH", body: frag,
          headers: { "Content-Type": "application/trickle-ice-sdpfrag", "If-Match": "*" },
        });
        break;
      } catch (err) {
        if (attempt >= 3) throw new StageError("NETWORK_ERROR", String(err && err.message || err));
        await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
      }
    }
    if (res.status !== 200) throw new StageError("HTTP_" + res.status, "the ICE restart was refused");
    const answer = (await res.text()).split(/\r?\n/);
    const ufrag = answer.find((l) => l.startsWith("a=ice-ufrag:"));
    const pwd = answer.find((l) => l.startsWith("a=ice-pwd:"));
    const candidates = answer.filter((l) => l.startsWith("a=candidate:"));
    if (!ufrag || !pwd) throw new StageError("INVALID_INPUT", "the ICE restart's answer has no credentials");
    const out = [];
    let first = true;
    for (const l of pc.remoteDescription.sdp.split(/\r?\n/)) {
      if (!l || l.startsWith("a=candidate:") || l === "a=end-of-candidates") continue;
      out.push(l.startsWith("a=ice-ufrag:") ? ufrag : l.startsWith("a=ice-pwd:") ? pwd : l);
      if (first && l.startsWith("a=mid:")) {
        out.push(...candidates);
        first = false;
      }
    }
    await pc.setRemoteDescription({ type: "answer", sdp: out.join("\r\n") + "\r\n" });
  }

  // The configuration of a peer connection: the rtcConfiguration option,
  // with the TURN servers the server handed out (the joined message's
  // iceServers, credentials of this participant) after its own.
  #rtcConfiguration() {
    const cfg = { ...this.#opts.rtcConfiguration };
    const given = (this.#info && this.#info.iceServers) || [];
    if (given.length) cfg.iceServers = [...(cfg.iceServers || []), ...given];
    return cfg;
  }

  // One WHIP or WHEP exchange: the offer with every candidate, the answer,
  // and the session's URL (DELETE it to end the session).
  async #exchange(url, pc) {
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    let res;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: "Bearer " + this.#token },
        body: pc.localDescription.sdp,
      });
    } catch (err) {
      throw new StageError("NETWORK_ERROR", String(err && err.message || err));
    }
    if (res.status !== 201) {
      let body = {};
      try {
        body = await res.json();
      } catch {
        // not JSON
      }
      throw new StageError(body.code || "HTTP_" + res.status, body.message || res.statusText, res.status);
    }
    const location = new URL(res.headers.get("Location") || "", url).href;
    const answer = await res.text();
    if (pc.signalingState === "closed") {
      release(location);
      throw new StageError("SESSION_ENDED", "closed while connecting");
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    return location;
  }

  #end(code, message) {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#pubTimer);
    clearInterval(this.#pingTimer);
    const ws = this.#ws;
    this.#ws = null;
    this.#settleExchange(ws, null, new StageError(code, message || code));
    if (ws) {
      ws.onclose = ws.onmessage = null;
      try {
        ws.close(1000, code === LEFT ? "left" : undefined);
      } catch {
        // already closed
      }
    }
    this.#closePublication(true);
    for (const id of [...this.#subs.keys()]) this.#unsubscribe(id);
    for (const shown of [...this.#attached.values()]) for (const e of [...shown.values()]) e.stop();
    if (this.#localStream) {
      if (this.#ownsLocalStream) for (const t of this.#localStream.getTracks()) t.stop();
      this.#emit("streamremoved", { participant: this.#local, stream: this.#localStream });
      this.#local.stream = null;
    }
    this.#participants.clear();
    this.#setState("disconnected");
    const reason = message || code;
    this.#emit("disconnected", { code, reason });
    if (this.#joinWaiter) {
      this.#joinWaiter.reject(new StageError(code, reason));
      this.#joinWaiter = null;
    }
  }

  #can(capability) {
    const caps = this.#claims.capabilities;
    return !caps || caps[capability] !== false;
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit("connectionstatechange", { state });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

// iceGathered resolves when pc has every candidate, or after a while with
// those it has: the server takes no trickled candidates.
function iceGathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, gatherTimeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// simulcastEncodings are the sendEncodings of a camera published in
// simulcast, lowest first, as many as its size allows (simulcastSizes);
// null for a single layer.
function simulcastEncodings(track) {
  const { width, height } = track.getSettings ? track.getSettings() : {};
  const pixels = width > 0 && height > 0 ? width * height : Infinity;
  const size = simulcastSizes.find((s) => pixels >= s.pixels);
  if (!size) return null;
  return simulcastLayers.slice(-size.layers).map((l) => ({ ...l, active: true }));
}

// defaultEncodings are the sendEncodings of a track published without
// its own: the camera's simulcast layers, when simulcast is on; else
// null, the browser's.
function defaultEncodings(track, simulcast) {
  return track.kind === "video" && simulcast ? simulcastEncodings(track) : null;
}

// shapeOf tells what a new publication must be made for: the kinds of a
// publishTracks list and their layers.
function shapeOf(entries, simulcastRefused) {
  return entries.map((e) => {
    const layers = e.encodings && e.encodings.length > 1 && !simulcastRefused ? e.encodings.map((x) => x.rid).join("/") : "1";
    return e.track.kind + ":" + layers;
  }).sort().join(";");
}

// shownSize is the size, in device pixels, of the picture a <video> shows
// in its box (CSS pixels): the part of the box object-fit "contain" or
// "scale-down" gives it, the whole picture for "cover", else the box.
// A removed or hidden element shows nothing.
function shownSize(video, box) {
  let { width, height } = box;
  const vw = video.videoWidth;
  const vh = video.videoHeight;
  if (!video.isConnected || !(width > 0 && height > 0)) return { width: 0, height: 0 };
  if (vw > 0 && vh > 0) {
    const fit = getComputedStyle(video).objectFit;
    const k = fit === "contain" || fit === "scale-down" ? Math.min(width / vw, height / vh)
      : fit === "cover" ? Math.max(width / vw, height / vh) : 0;
    if (k > 0) {
      width = vw * k;
      height = vh * k;
    }
  }
  const dpr = window.devicePixelRatio || 1;
  return { width: Math.round(width * dpr), height: Math.round(height * dpr) };
}

// release ends a WHIP or WHEP session; its URL is the capability to do so.
function release(location) {
  if (!location) return;
  fetch(location, { method: "DELETE", keepalive: true }).catch(() => {});
}

// backoff is the wait before the attempt-th retry: 0.5 s doubling to 10 s,
// with jitter.
function backoff(attempt) {
  const base = Math.min(maxBackoffMs, 500 * 2 ** Math.min(attempt, 10));
  return base / 2 + Math.random() * (base / 2);
}

function rank(order, id) {
  const i = order.indexOf(id);
  return i < 0 ? -1 : i;
}
