// Musical keys in Camelot notation, with the wheel's colours (pitch class 0-11, C = 0;
// mode 1 major "B", 0 minor "A").
const NAMES = ['C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B'];

export function camelotNumber(key, mode) {
  const major = mode === 1 ? key : (key + 3) % 12;  // a minor key sits with its relative major
  return ((7 * major + 7) % 12) + 1;
}

export function camelot(key, mode) {
  if (key === null || key === undefined || mode === null || mode === undefined) return '';
  return `${camelotNumber(key, mode)}${mode === 1 ? 'B' : 'A'}`;
}

export function keyName(key, mode) {
  if (key === null || key === undefined) return '';
  return NAMES[key] + (mode === 0 ? 'm' : '');
}

// The wheel's colour of a Camelot position: hues around the circle, minor darker.
export function camelotColour(key, mode) {
  if (key === null || key === undefined || mode === null || mode === undefined) return 'transparent';
  const n = camelotNumber(key, mode);
  const hue = (150 + (n - 1) * 30) % 360;
  return mode === 1 ? `hsl(${hue} 70% 62%)` : `hsl(${hue} 65% 45%)`;
}

// Every Camelot code with its key and mode, 1A..12B, for the filters and editors.
export const CAMELOT = [];
for (let n = 1; n <= 12; n++) {
  for (const mode of [0, 1]) {
    for (let key = 0; key < 12; key++) {
      if (camelotNumber(key, mode) === n) {
        CAMELOT.push({code: `${n}${mode === 1 ? 'B' : 'A'}`, key, mode, name: keyName(key, mode)});
      }
    }
  }
}
