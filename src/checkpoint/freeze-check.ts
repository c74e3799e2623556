// `--verify` (tests): at the freeze, hash all of live memory and check that what
// the cleaner sent is exactly it — every sent page equal to memory, no dirty page
// left unsent, nothing sent of a frame space that was gone by then.
import type { FrameSpace } from '../memory/frames.js';
import { isZeroPage, pageDigest, type PageDigests } from '../format/index.js';

export interface LiveDigests {
  slots: Set<number>;
  pages: Map<string, Buffer>;
}

/** Digests of all of live memory at the freeze, and which spaces were live then. */
export function liveDigests(spaces: FrameSpace[]): LiveDigests {
  const pages = new Map<string, Buffer>();
  const slots = new Set<number>();
  for (const s of spaces) {
    slots.add(s.slot);
    for (let i = 0; i < s.pageCount(); i++) {
      const d = s.page(i);
      if (!isZeroPage(d)) pages.set(`${s.slot}:${i}`, pageDigest(d));
    }
  }
  return { slots, pages };
}

export function compareWithLive(sent: PageDigests, { slots, pages }: LiveDigests): void {
  const live = new Map(pages);
  for (const [slot, page, digest] of sent.entries()) {
    if (!slots.has(slot))
      throw new Error(
        `checkpoint integrity: page ${slot}:${page} belongs to a frame space that was gone at the freeze point`,
      );
    const key = `${slot}:${page}`;
    const want = live.get(key);
    if (!want || !want.equals(digest))
      throw new Error(`checkpoint integrity: page ${key} differs from memory at the freeze point`);
    live.delete(key);
  }
  if (live.size)
    throw new Error(
      `checkpoint integrity: ${live.size} dirty page(s) were never sent, e.g. ${[...live.keys()][0]}`,
    );
}
