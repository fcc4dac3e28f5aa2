// A small hand-written SVG line chart: one polyline per series, min/max labels on both axes, and
// a legend. Long series are thinned for drawing (min/max per bucket), never for the counts.

import type { Point } from './api';
import { colorFor, extentOf, formatValue, polylinePoints, scaleX, scaleY, withDomain, type Box } from './chart';
import { thinForDisplay } from './series';

export interface ChartSeries {
  id: string;
  label: string;
  points: Point[];
  color?: string;
  /** data-testid of the polyline (e.g. curve-train/loss). */
  testId?: string;
}

const BOX: Box = { width: 960, height: 300, pad: { l: 60, r: 12, t: 10, b: 28 } };

export function LineChart({
  series,
  xLabel = 'step',
  yLabel,
  testId,
  height,
  yDomain,
}: {
  series: ChartSeries[];
  xLabel?: string;
  yLabel?: string;
  testId?: string;
  height?: number;
  /** Fixed y range (e.g. [0, 100] for percentages); data outside widens it. */
  yDomain?: [number, number];
}) {
  const box: Box = height ? { ...BOX, height } : BOX;
  const drawn = series.map((s) => ({ ...s, shown: thinForDisplay(s.points) }));
  const e = withDomain(extentOf(drawn.map((s) => s.shown)), yDomain);
  const right = box.width - box.pad.r;
  const bottom = box.height - box.pad.b;
  return (
    <figure className="chart" data-testid={testId}>
      <svg viewBox={`0 0 ${box.width} ${box.height}`} width="100%" role="img" aria-label={yLabel ?? 'chart'}>
        <rect x={box.pad.l} y={box.pad.t} width={right - box.pad.l} height={bottom - box.pad.t} fill="#fff" stroke="#ccc" />
        {e ? (
          <>
            <text className="axis" x={box.pad.l - 4} y={box.pad.t + 8} textAnchor="end" data-testid="axis-ymax">
              {formatValue(e.ymax)}
            </text>
            <text className="axis" x={box.pad.l - 4} y={bottom} textAnchor="end" data-testid="axis-ymin">
              {formatValue(e.ymin)}
            </text>
            <text className="axis" x={box.pad.l} y={box.height - 8} textAnchor="start" data-testid="axis-xmin">
              {formatValue(e.xmin)}
            </text>
            <text className="axis" x={right} y={box.height - 8} textAnchor="end" data-testid="axis-xmax">
              {formatValue(e.xmax)}
            </text>
            <text className="axis" x={(box.pad.l + right) / 2} y={box.height - 8} textAnchor="middle">
              {xLabel}
            </text>
            {drawn.map((s, i) => (
              <polyline
                key={s.id}
                data-testid={s.testId}
                data-points={s.points.length}
                points={polylinePoints(s.shown, e, box)}
                fill="none"
                stroke={s.color ?? colorFor(i)}
                strokeWidth={1.5}
                vectorEffect="non-scaling-stroke"
              />
            ))}
            {drawn.map((s, i) =>
              s.shown.length === 1 ? <circle key={`${s.id}-dot`} cx={scaleX(s.shown[0].step, e, box)} cy={scaleY(s.shown[0].value, e, box)} r={3} fill={s.color ?? colorFor(i)} /> : null,
            )}
          </>
        ) : (
          <>
            <text className="axis" x={box.width / 2} y={box.height / 2} textAnchor="middle">
              no points yet
            </text>
            {series.map((s) => (
              <polyline key={s.id} data-testid={s.testId} data-points={0} points="" fill="none" />
            ))}
          </>
        )}
      </svg>
      <figcaption className="legend">
        {yLabel ? <span className="legend-title">{yLabel}</span> : null}
        {series.map((s, i) => (
          <span key={s.id} className="legend-item">
            <span className="swatch" style={{ background: s.color ?? colorFor(i) }} />
            {s.label} <span className="muted">({s.points.length} pts)</span>
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
