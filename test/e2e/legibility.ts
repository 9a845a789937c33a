// Legibility of a webview page as the user sees it: the WCAG contrast of each text's colour against the
// background it is drawn on (the first painted background behind it, semi-transparent ones blended),
// measured with the colours the browser computed in the theme under test.
import assert from 'node:assert/strict';
import type { Frame } from 'playwright-core';
import type { Theme } from './harness';

type Rgba = [number, number, number, number];

/** An rgb()/rgba() colour (as getComputedStyle gives it); 'transparent' and unparsable ones are fully transparent. */
function parse(c: string): Rgba {
  const n = (c.match(/[\d.]+/g) ?? []).map(Number);
  if (n.length < 3) return [0, 0, 0, 0];
  return [n[0], n[1], n[2], n.length > 3 ? n[3] : 1];
}

/** `top` painted over an opaque `bottom`. */
function over(top: Rgba, bottom: Rgba): Rgba {
  const a = top[3];
  return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1) as Rgba;
}

/** WCAG contrast ratio of two CSS colours; a semi-transparent `fg` is blended over `bg` first. */
export function contrast(fg: string, bg: string): number {
  const back = parse(bg);
  const front = over(parse(fg), back);
  const lum = (c: Rgba) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [l1, l2] = [lum(front), lum(back)].sort((x, y) => y - x);
  return (l1 + 0.05) / (l2 + 0.05);
}

export interface Sample {
  /** What is measured, for the message. */
  what: string;
  /** Elements whose own text is measured (each one matched, up to 40). */
  selector: string;
  /** The least ratio allowed (WCAG AA: 4.5 for body text, 3 for large or bold UI text). */
  min?: number;
  /** For a VS Code Elements component: the part inside its shadow root that paints the text (e.g. '.base'). */
  shadow?: string;
}

/** Each matched element's text colour and the opaque background behind it, read in the page. */
async function colours(
  frame: Frame,
  selector: string,
  shadow?: string,
): Promise<{ text: string; fg: string; bg: string }[]> {
  return frame.evaluate(
    ([sel, part]) => {
      const rgba = (c: string): number[] => {
        const n = (c.match(/[\d.]+/g) ?? []).map(Number);
        return n.length < 3 ? [0, 0, 0, 0] : [n[0], n[1], n[2], n.length > 3 ? n[3] : 1];
      };
      // backgrounds from the element outwards, blended from the outermost painted one inwards
      const backgroundOf = (el: Element): string => {
        const layers: number[][] = [];
        // up through shadow roots to their hosts
        const up = (e: Element): Element | null => e.parentElement ?? (e.getRootNode() as ShadowRoot).host ?? null;
        for (let e: Element | null = el; e; e = up(e)) {
          const c = rgba(getComputedStyle(e).backgroundColor);
          if (c[3] > 0) layers.push(c);
          if (c[3] >= 1) break;
        }
        let out = [255, 255, 255];
        for (const c of layers.reverse()) out = out.map((v, i) => c[i] * c[3] + v * (1 - c[3]));
        return `rgb(${out.map((v) => Math.round(v)).join(', ')})`;
      };
      return (
        Array.from(document.querySelectorAll(sel))
          // text inside a closed <details> counts too: its colours are computed all the same
          .filter((e) => (e.textContent ?? '').trim() !== '')
          .slice(0, 40)
          .map((e) => {
            const painted = part ? (e.shadowRoot?.querySelector(part) ?? e) : e;
            return {
              text: (e.textContent ?? '').trim().slice(0, 40),
              fg: getComputedStyle(painted).color,
              bg: backgroundOf(painted),
            };
          })
      );
    },
    [selector, shadow] as const,
  );
}

/**
 * Asserts every sample's contrast and logs the least one of each. A selector that matches no text fails
 * (a check of nothing would pass whatever the page looks like).
 */
export async function assertLegible(frame: Frame, theme: Theme, samples: Sample[]): Promise<void> {
  for (const s of samples) {
    const found = await colours(frame, s.selector, s.shadow);
    assert.ok(found.length > 0, `${theme}: nothing to measure for ${s.what} (${s.selector})`);
    const min = s.min ?? 4.5;
    const rated = found.map((f) => ({ ...f, ratio: contrast(f.fg, f.bg) })).sort((a, b) => a.ratio - b.ratio);
    const worst = rated[0];
    console.log(
      `${theme} theme: ${s.what}: least contrast ${worst.ratio.toFixed(2)}:1 ("${worst.text}", ${worst.fg} on ${worst.bg}; ${found.length} measured)`,
    );
    assert.ok(
      worst.ratio >= min,
      `${theme}: ${s.what} "${worst.text}" has contrast ${worst.ratio.toFixed(2)}:1 (${worst.fg} on ${worst.bg}), below ${min}:1`,
    );
  }
}

/** The CSP refusals the page recorded (webview/lit-nonce.ts): none expected. */
export async function cspViolations(frame: Frame): Promise<string[]> {
  return frame.evaluate(() => JSON.parse(document.documentElement.dataset.cspViolations ?? '[]') as string[]);
}
