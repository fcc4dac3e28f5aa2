/** The metric picker shared by the run and compare pages. */
export function MetricSelect(props: { testId: string; keys: string[]; value: string | null; onChange: (k: string) => void }) {
  return (
    <label>
      metric{' '}
      <select data-testid={props.testId} value={props.value ?? ''} onChange={(e) => props.onChange(e.target.value)} disabled={props.keys.length === 0}>
        {props.keys.map((k) => (
          <option key={k} value={k}>
            {k}
          </option>
        ))}
      </select>
    </label>
  );
}
