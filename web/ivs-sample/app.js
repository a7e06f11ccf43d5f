// A sample app of the Amazon IVS real-time Stage API: join a stage with a
// participant token, publish the camera and microphone, and see and hear
// everyone else. It uses only the documented API of the IVS Web Broadcast
// SDK, nothing of ivsrt's own.
//
// An IVS app imports these same names from "amazon-ivs-web-broadcast";
// the import below is the only line that differs.
import {
  Stage,
  LocalStageStream,
  SubscribeType,
  StageEvents,
  StreamType,
  StageConnectionState,
  StageParticipantPublishState,
  StageParticipantSubscribeState,
  StageLeftReason,
  StageErrorCode,
} from "/client/ivs-stage.js";

const $ = (id) => document.getElementById(id);

// --- state ---------------------------------------------------------------

let stage = null; // the Stage while joined (or joining)
let localStreams = []; // LocalStageStream[]: the camera and microphone
let publishing = true; // the Publish toggle
const subscribeChoices = new Map(); // participant id → SubscribeType
let lastError = null; // the last StageError of this stage, shown when it ends

// The strategy: the SDK asks it what to publish and what to receive, on
// joining, when someone joins, and on every stage.refreshStrategy(). Its
// answers come from the page's state, so a control changes that state and
// refreshes the strategy.
const strategy = {
  stageStreamsToPublish() {
    return localStreams;
  },
  shouldPublishParticipant() {
    return publishing;
  },
  shouldSubscribeToParticipant(participant) {
    return subscribeChoices.get(participant.id) ?? SubscribeType.AUDIO_VIDEO;
  },
};

// --- labels --------------------------------------------------------------

const stateLabels = {
  [StageConnectionState.CONNECTING]: "Connecting…",
  [StageConnectionState.CONNECTED]: "Connected",
  [StageConnectionState.ERRORED]: "Connection lost, retrying…",
  [StageConnectionState.DISCONNECTED]: "Disconnected",
};

const publishLabels = {
  [StageParticipantPublishState.NOT_PUBLISHED]: "not publishing",
  [StageParticipantPublishState.ATTEMPTING_PUBLISH]: "starting to publish…",
  [StageParticipantPublishState.PUBLISHED]: "publishing",
  [StageParticipantPublishState.ERRORED]: "publishing failed",
};

const subscribeLabels = {
  [StageParticipantSubscribeState.NOT_SUBSCRIBED]: "not received",
  [StageParticipantSubscribeState.ATTEMPTING_SUBSCRIBE]: "subscribing…",
  [StageParticipantSubscribeState.SUBSCRIBED]: "received",
  [StageParticipantSubscribeState.ERRORED]: "receiving failed",
};

const leftTitles = {
  [StageLeftReason.USER_INITIATED]: "You left the stage.",
  [StageLeftReason.PARTICIPANT_DISCONNECTED]: "You were disconnected from the stage.",
  [StageLeftReason.STAGE_DELETED]: "The stage was deleted.",
  [StageLeftReason.TOKEN_REUSED]: "This token joined the stage from somewhere else.",
  [StageLeftReason.FAILED_EXCHANGE]: "The token exchange was refused.",
};

// The choices of each remote tile's menu, in order.
const subscribeOptions = [
  [SubscribeType.AUDIO_VIDEO, "Audio and video"],
  [SubscribeType.AUDIO_ONLY, "Audio only"],
  [SubscribeType.NONE, "None"],
];

// --- joining and leaving -------------------------------------------------

function main() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) join(token);
  });
  $("leave").addEventListener("click", leave);
  $("mic").addEventListener("click", () => toggleMuted(StreamType.AUDIO));
  $("cam").addEventListener("click", () => toggleMuted(StreamType.VIDEO));
  $("publish").addEventListener("click", togglePublishing);
  $("sound").addEventListener("click", turnSoundOn);
  // Leaving explicitly lets the others see you go at once, rather than
  // when the server notices the connection is gone.
  window.addEventListener("pagehide", () => stage?.leave());

  renderControls();
  // A token in the URL (?token=…) joins at once, as a link to a stage should.
  const token = new URLSearchParams(location.search).get("token");
  if (token) {
    $("token").value = token;
    join(token);
  }
}

async function join(token) {
  hideNotice();
  lastError = null;
  let joining;
  try {
    // The constructor parses the token: a malformed one throws here,
    // before the camera is asked for.
    joining = new Stage(token, strategy);
  } catch (err) {
    showError(err);
    return;
  }
  stage = joining;
  listenTo(joining);
  renderControls();

  const streams = await openCameraAndMicrophone();
  if (stage !== joining) {
    // Left while the browser asked for the camera.
    for (const stream of streams) stream.mediaStreamTrack.stop();
    return;
  }
  localStreams = streams;
  renderControls();

  try {
    await joining.join();
  } catch (err) {
    // A failed join is usually told by ERROR and STAGE_LEFT first (and
    // leaving while joining rejects too): only a failure told by nothing
    // else is shown here.
    if (stage !== joining) return;
    if (!lastError) showError(err);
    endSession();
  }
}

// openCameraAndMicrophone returns the LocalStageStreams to publish, or
// none if the browser gives no camera or microphone: the page then only
// watches.
async function openCameraAndMicrophone() {
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({
      audio: true,
      // At most 720p: the SDK documents trouble publishing more.
      video: { width: { ideal: 1280, max: 1280 }, height: { ideal: 720, max: 720 } },
    });
  } catch (err) {
    showNotice("No camera or microphone.", `${err.name}: ${err.message}. You can still watch.`);
    return [];
  }
  return media.getTracks().map((track) =>
    track.kind === "video"
      ? // Simulcast: the server can forward a smaller layer to those who
        // show you small or have little bandwidth.
        new LocalStageStream(track, { simulcast: { enabled: true } })
      : new LocalStageStream(track),
  );
}

function leave() {
  // leave() tells STAGE_LEFT (which ends the session) if the stage was
  // joined; endSession covers leaving before that.
  stage?.leave();
  endSession();
}

// endSession puts the page back as before joining: the camera released,
// no tiles, the token form shown. It may be called more than once.
function endSession() {
  if (!stage) return;
  stage = null;
  stopLocalStreams();
  publishing = true;
  subscribeChoices.clear();
  for (const tile of [...document.querySelectorAll(".tile")]) removeTile(tile);
  $("sound").hidden = true;
  renderControls();
}

function stopLocalStreams() {
  for (const stream of localStreams) stream.mediaStreamTrack.stop();
  localStreams = [];
}

// --- the stage's events --------------------------------------------------

function listenTo(s) {
  s.on(StageEvents.STAGE_CONNECTION_STATE_CHANGED, showConnectionState);

  // The SDK announces remote participants only; the local one gets its
  // tile from its own streams and publish state (see tileOf).
  s.on(StageEvents.STAGE_PARTICIPANT_JOINED, (participant) => createTile(participant));
  s.on(StageEvents.STAGE_PARTICIPANT_LEFT, (participant) => {
    subscribeChoices.delete(participant.id);
    const tile = tileOf(participant);
    if (tile) removeTile(tile);
  });
  s.on(StageEvents.STAGE_PARTICIPANT_METADATA_CHANGED, (participant) => {
    const tile = tileOf(participant);
    if (tile) showName(tile, participant);
  });

  s.on(StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, attachStreams);
  s.on(StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, detachStreams);
  s.on(StageEvents.STAGE_STREAM_MUTE_CHANGED, (participant, stream) => {
    const tile = tileOf(participant);
    if (!tile) return;
    // The stream says its own state at once; the participant's flags
    // say the other kind's.
    showMuteState(tile, {
      audioMuted: stream.streamType === StreamType.AUDIO ? stream.isMuted : participant.audioMuted,
      videoStopped: stream.streamType === StreamType.VIDEO ? stream.isMuted : participant.videoStopped,
    });
  });

  s.on(StageEvents.STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED, (participant, state) => {
    const tile = tileOf(participant);
    if (!tile) return;
    tile.dataset.publishState = state;
    showStates(tile);
  });
  s.on(StageEvents.STAGE_PARTICIPANT_SUBSCRIBE_STATE_CHANGED, (participant, state) => {
    const tile = tileOf(participant);
    if (!tile) return;
    tile.dataset.subscribeState = state;
    showStates(tile);
  });

  s.on(StageEvents.ERROR, (error) => {
    lastError = error;
    showError(error);
  });
  s.on(StageEvents.STAGE_LEFT, (reason) => {
    showLeft(reason);
    endSession();
  });
}

function showConnectionState(state) {
  $("state").dataset.state = state;
  $("state-text").textContent = stateLabels[state] || state;
}

// --- tiles -----------------------------------------------------------------

// tileOf finds a participant's tile. The local participant's is made on
// its first event, as no STAGE_PARTICIPANT_JOINED tells of it.
function tileOf(participant) {
  if (!participant) return null;
  if (participant.isLocal) {
    const tile = document.querySelector('.tile[data-local="true"]') || createTile(participant);
    if (participant.id) tile.dataset.participantId = participant.id;
    return tile;
  }
  return document.querySelector(`.tile[data-participant-id="${CSS.escape(participant.id)}"]`);
}

function createTile(participant) {
  const tile = element("figure", "tile");
  if (participant.id) tile.dataset.participantId = participant.id;
  tile.dataset.local = String(participant.isLocal);
  tile.dataset.publishState = participant.isPublishing
    ? StageParticipantPublishState.PUBLISHED
    : StageParticipantPublishState.NOT_PUBLISHED;
  if (!participant.isLocal) tile.dataset.subscribeState = StageParticipantSubscribeState.NOT_SUBSCRIBED;

  const video = element("video");
  video.autoplay = true;
  video.playsInline = true;
  // Your own sound played back to you would echo; only your video is
  // attached, and the element stays muted besides.
  video.muted = participant.isLocal;
  // The shared style sheet mirrors the video of any tile with a
  // data-local attribute, "false" included: only your own should be.
  if (!participant.isLocal) video.style.transform = "none";
  video.addEventListener("loadedmetadata", () => fitTile(tile, video));
  video.addEventListener("resize", () => fitTile(tile, video));

  const frame = element("div", "frame");
  frame.append(video, element("div", "avatar"));

  const caption = element("figcaption");
  caption.style.flexWrap = "wrap"; // room for the menu on narrow tiles
  caption.append(
    element("span", "name"),
    badge("mic-off", "mic off"),
    badge("cam-off", "camera off"),
    element("span", "states small muted"),
  );
  if (!participant.isLocal) caption.append(element("span", "spacer"), subscribeMenu(participant));
  tile.append(frame, caption);

  showName(tile, participant);
  showMuteState(tile, participant);
  showStates(tile);

  // Yourself first, the others in the order they came.
  const grid = $("grid");
  if (participant.isLocal) grid.prepend(tile);
  else grid.append(tile);
  grid.dataset.count = String(grid.children.length);
  return tile;
}

function removeTile(tile) {
  tile.querySelector("video").srcObject = null;
  tile.remove();
  $("grid").dataset.count = String($("grid").children.length);
}

function subscribeMenu(participant) {
  const select = element("select", "subscribe-type");
  for (const [value, label] of subscribeOptions) select.append(new Option(label, value));
  select.value = subscribeChoices.get(participant.id) ?? SubscribeType.AUDIO_VIDEO;
  select.addEventListener("change", () => {
    subscribeChoices.set(participant.id, select.value);
    // The SDK asks shouldSubscribeToParticipant again and applies only
    // what changed: streams come and go by STREAMS_ADDED and _REMOVED.
    stage?.refreshStrategy();
  });
  const label = element("label", "row small");
  label.append("Receive", select);
  return label;
}

function showName(tile, participant) {
  const name = participant.userId || participant.id || "you";
  tile.querySelector(".name").textContent = participant.isLocal ? `${name} (you)` : name;
  tile.querySelector(".avatar").textContent = initials(name);
  tile.title = `${name} · participant ${participant.id}`;
}

function showMuteState(tile, { audioMuted, videoStopped }) {
  tile.dataset.audioMuted = String(!!audioMuted);
  tile.dataset.videoStopped = String(!!videoStopped);
  tile.querySelector(".mic-off").hidden = !audioMuted;
  tile.querySelector(".cam-off").hidden = !videoStopped;
  showVideoOrAvatar(tile);
}

function showStates(tile) {
  const parts = [publishLabels[tile.dataset.publishState] || tile.dataset.publishState];
  if (tile.dataset.subscribeState) {
    parts.push(subscribeLabels[tile.dataset.subscribeState] || tile.dataset.subscribeState);
  }
  tile.querySelector(".states").textContent = parts.join(" · ");
}

// showVideoOrAvatar shows the picture when there is one to show, else the
// participant's initials (a stopped camera sends no frames: its last one
// would stay frozen).
function showVideoOrAvatar(tile) {
  const media = tile.querySelector("video").srcObject;
  const hasVideo = !!media && media.getVideoTracks().length > 0 && tile.dataset.videoStopped !== "true";
  tile.classList.toggle("has-video", hasVideo);
}

// fitTile gives a tile the shape of its video (a camera may be 4:3, 16:9
// or upright), or the default shape without one.
function fitTile(tile, video) {
  if (video.srcObject && video.videoWidth > 0 && video.videoHeight > 0) {
    tile.style.setProperty("--aspect", `${video.videoWidth} / ${video.videoHeight}`);
  } else {
    tile.style.removeProperty("--aspect");
  }
}

// --- media -----------------------------------------------------------------

function attachStreams(participant, streams) {
  const tile = tileOf(participant);
  if (!tile) return;
  const video = tile.querySelector("video");
  const media = video.srcObject || new MediaStream();
  for (const stream of streams) {
    if (participant.isLocal && stream.streamType === StreamType.AUDIO) continue;
    const track = stream.mediaStreamTrack;
    // One track of each kind: a new subscription replaces the old track.
    for (const old of media.getTracks()) if (old.kind === track.kind && old !== track) media.removeTrack(old);
    if (!media.getTracks().includes(track)) media.addTrack(track);
  }
  if (media.getTracks().length && video.srcObject !== media) video.srcObject = media;

  showMuteState(tile, {
    audioMuted: participant.audioMuted || streams.some((s) => s.streamType === StreamType.AUDIO && s.isMuted),
    videoStopped: participant.videoStopped || streams.some((s) => s.streamType === StreamType.VIDEO && s.isMuted),
  });
  if (video.srcObject) play(video, participant);
}

function detachStreams(participant, streams) {
  const tile = tileOf(participant);
  if (!tile) return;
  const video = tile.querySelector("video");
  const media = video.srcObject;
  if (!media) return;
  for (const stream of streams) media.removeTrack(stream.mediaStreamTrack);
  if (!media.getTracks().length) {
    video.srcObject = null;
    fitTile(tile, video);
  }
  showVideoOrAvatar(tile);
}

// play starts a video. Browsers refuse to play sound before the user has
// clicked on the page (a token in the URL joins without a click): then it
// plays muted, and the "Turn sound on" button offers the sound.
function play(video, participant) {
  video.play().catch((err) => {
    if (err.name !== "NotAllowedError") return; // e.g. interrupted by newer tracks
    video.muted = true;
    video.play().catch(() => {});
    if (!participant.isLocal) $("sound").hidden = false;
  });
}

function turnSoundOn() {
  for (const video of document.querySelectorAll('.tile[data-local="false"] video')) {
    video.muted = false;
    video.play().catch(() => {});
  }
  $("sound").hidden = true;
}

// --- controls --------------------------------------------------------------

function localStreamOf(type) {
  return localStreams.find((s) => s.streamType === type);
}

// toggleMuted mutes or unmutes the microphone or camera. Muting keeps the
// publication (unlike unpublishing, it is instant): subscribers get
// silence or no frames, and a STAGE_STREAM_MUTE_CHANGED.
function toggleMuted(type) {
  const stream = localStreamOf(type);
  if (!stream) return;
  stream.setMuted(!stream.isMuted);
  renderControls();
}

function togglePublishing() {
  if (!stage) return;
  publishing = !publishing;
  // The SDK asks shouldPublishParticipant again and publishes or stops.
  stage.refreshStrategy();
  renderControls();
}

function renderControls() {
  const inStage = stage !== null;
  const audio = localStreamOf(StreamType.AUDIO);
  const video = localStreamOf(StreamType.VIDEO);
  $("token-card").hidden = inStage;
  setEnabled($("join"), !inStage);
  setEnabled($("leave"), inStage);
  setEnabled($("mic"), inStage && !!audio);
  setEnabled($("cam"), inStage && !!video);
  setEnabled($("publish"), inStage);
  $("mic").setAttribute("aria-pressed", String(!!audio?.isMuted));
  $("cam").setAttribute("aria-pressed", String(!!video?.isMuted));
  $("publish").setAttribute("aria-pressed", String(publishing));
}

// setEnabled enables or disables a button, dimming it: the shared style
// sheet styles buttons the same either way.
function setEnabled(button, enabled) {
  button.disabled = !enabled;
  button.style.opacity = enabled ? "" : "0.45";
}

// --- notices -----------------------------------------------------------------

function showLeft(reason) {
  const title = leftTitles[reason] || "You are no longer in the stage.";
  const text = lastError ? describeError(lastError) : `Reason: ${reason}`;
  showNotice(title, text);
  $("notice").dataset.leftReason = reason;
}

function showError(error) {
  showNotice("Something went wrong.", describeError(error));
  if (error && error.code !== undefined) $("notice").dataset.errorCode = String(error.code);
}

function describeError(error) {
  const name = Object.keys(StageErrorCode).find((key) => StageErrorCode[key] === error.code);
  const code = name ? `${name} (${error.code})` : error.code ?? error.name ?? "Error";
  return `${code}: ${error.message}`;
}

function showNotice(title, text) {
  $("notice").hidden = false;
  $("notice-title").textContent = title;
  $("notice-text").textContent = text;
}

function hideNotice() {
  $("notice").hidden = true;
  delete $("notice").dataset.leftReason;
  delete $("notice").dataset.errorCode;
}

// --- helpers -------------------------------------------------------------------

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text) el.textContent = text;
  return el;
}

function badge(className, text) {
  const el = element("span", `badge warn ${className}`, text);
  el.hidden = true;
  return el;
}

function initials(name) {
  const words = String(name).split(/[\s._-]+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words[1][0] : String(name).slice(0, 2)).toUpperCase();
}

main();
