/**
 * Tables drawn the way etcdctl draws them with `-w table` (olekukonko/tablewriter): `+---+` borders,
 * upper-case headers centred, one space of padding on each side of a cell.
 */

/** How each column's cells are aligned. */
export type Alignment = "left" | "right";

/**
 * Renders `rows` under `header` (headers are upper-cased as etcdctl does). `align` gives one alignment
 * for all columns or one per column. The result ends with a newline.
 */
export function renderBoxTable(
  header: string[],
  rows: string[][],
  align: Alignment | Alignment[] = "right",
): string {
  const heads = header.map((h) => h.toUpperCase());
  const widths = heads.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const border = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+`;
  const line = (cells: string[]) => `|${cells.map((c) => ` ${c} `).join("|")}|`;
  const centre = (s: string, w: number) => {
    const gap = w - s.length;
    const left = Math.floor(gap / 2);
    return " ".repeat(left) + s + " ".repeat(gap - left);
  };
  const alignOf = (i: number): Alignment => (Array.isArray(align) ? (align[i] ?? "left") : align);
  const out = [border, line(heads.map((h, i) => centre(h, widths[i]!))), border];
  for (const r of rows) {
    out.push(
      line(
        widths.map((w, i) => (alignOf(i) === "right" ? (r[i] ?? "").padStart(w) : (r[i] ?? "").padEnd(w))),
      ),
    );
  }
  out.push(border);
  return `${out.join("\n")}\n`;
}
