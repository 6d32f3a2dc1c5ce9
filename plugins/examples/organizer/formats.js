// Formats the organizer checks and shows: dates, SSNs, EINs, money.

// "$1,234.56" for an amount in cents.
export function money(cents) {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  const dollars = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}$${dollars}.${String(abs % 100).padStart(2, "0")}`;
}

// A valid YYYY-MM-DD calendar date as {y, m, d, key} (key sorts by date).
export function parseDate(s) {
  if (typeof s !== "string") return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const days = [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (mo < 1 || mo > 12 || d < 1 || d > days[mo - 1]) return null;
  return { y, m: mo, d, key: y * 10000 + mo * 100 + d };
}

// SSNs (and ITINs, which start with 9) as issued: no 000, 666 or 9xx area
// outside the ITIN groups, no 00 group, no 0000 serial.
export function validSsn(s) {
  const m = /^(\d{3})-?(\d{2})-?(\d{4})$/.exec(String(s).trim());
  if (!m) return false;
  const [area, group, serial] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (area === 0 || area === 666 || group === 0 || serial === 0) return false;
  if (area >= 900) return (group >= 50 && group <= 65) || (group >= 70 && group <= 99 && group !== 89 && group !== 93);
  return true;
}

// EIN prefixes the IRS has never assigned.
const NO_EIN_PREFIX = new Set([0, 7, 8, 9, 17, 18, 19, 28, 29, 49, 69, 70, 78, 79, 89, 96, 97]);

export function validEin(s) {
  const m = /^(\d{2})-?(\d{7})$/.exec(String(s).trim());
  return !!m && !NO_EIN_PREFIX.has(Number(m[1]));
}
