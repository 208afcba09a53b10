// The offer ring: a two-tone WebAudio beep loop (no audio files).
// Browsers only let audio start after a user gesture, so the context is created (or resumed)
// on the first click/key press on the page and the ring stays silent until then.

let ctx = null;
let timer = null;

function context() {
  if (ctx === null) {
    const Ctor = globalThis.AudioContext || globalThis.webkitAudioContext;
    if (!Ctor) return null;
    ctx = new Ctor();
  }
  return ctx;
}

/** Unlock audio on the first user gesture. */
export function unlockAudioOnGesture() {
  const unlock = () => {
    const c = context();
    if (c && c.state === "suspended") c.resume().catch(() => {});
  };
  window.addEventListener("pointerdown", unlock, { capture: true });
  window.addEventListener("keydown", unlock, { capture: true });
}

function beep(c, at, freq) {
  const osc = c.createOscillator();
  const gain = c.createGain();
  osc.type = "sine";
  osc.frequency.value = freq;
  gain.gain.setValueAtTime(0.0001, at);
  gain.gain.exponentialRampToValueAtTime(0.18, at + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.22);
  osc.connect(gain).connect(c.destination);
  osc.start(at);
  osc.stop(at + 0.25);
}

function ringOnce() {
  const c = context();
  if (!c || c.state !== "running") return;
  const now = c.currentTime + 0.01;
  beep(c, now, 880);
  beep(c, now + 0.3, 660);
}

/** Start the loop (idempotent). */
export function startRinging() {
  if (timer !== null) return;
  ringOnce();
  timer = setInterval(ringOnce, 2000);
}

/** Stop the loop. */
export function stopRinging() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

/** True while the loop runs (tests and the UI read it). */
export function isRinging() {
  return timer !== null;
}
