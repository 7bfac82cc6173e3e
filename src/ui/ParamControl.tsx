import { useId } from 'react';
import type { ParamSpec, ParamValue } from '../methods/types';

/** Sliders are offered when the range has at most this many steps; number inputs always. */
const MAX_SLIDER_STEPS = 1000;

/** One control generated from a ParamSpec (code params are edited by the pattern editor). */
export function ParamControl({
  spec,
  value,
  onChange,
}: {
  spec: ParamSpec;
  value: ParamValue | undefined;
  onChange: (value: ParamValue) => void;
}) {
  const id = useId();
  const current = value ?? spec.default;
  let control;
  switch (spec.kind) {
    case 'int':
    case 'float': {
      const step = spec.step ?? (spec.kind === 'int' ? 1 : 0.01);
      const slider =
        spec.min !== undefined &&
        spec.max !== undefined &&
        (spec.max - spec.min) / step <= MAX_SLIDER_STEPS;
      const parse = (text: string) => (text.trim() === '' ? NaN : Number(text));
      control = (
        <span className="param-number">
          {slider && (
            <input
              type="range"
              aria-label={`${spec.label} slider`}
              min={spec.min}
              max={spec.max}
              step={step}
              value={Number(current)}
              onChange={(e) => onChange(parse(e.target.value))}
            />
          )}
          <input
            id={id}
            type="number"
            min={spec.min}
            max={spec.max}
            step={step}
            value={Number.isFinite(Number(current)) ? Number(current) : ''}
            onChange={(e) => onChange(parse(e.target.value))}
          />
        </span>
      );
      break;
    }
    case 'choice':
      control = (
        <select
          id={id}
          value={String(current)}
          onChange={(e) => {
            const option = spec.options?.find((o) => String(o) === e.target.value);
            if (option !== undefined) onChange(option);
          }}
        >
          {spec.options?.map((o) => (
            <option key={String(o)} value={String(o)}>
              {String(o)}
            </option>
          ))}
        </select>
      );
      break;
    case 'bool':
      control = (
        <input
          id={id}
          type="checkbox"
          checked={current === true}
          onChange={(e) => onChange(e.target.checked)}
        />
      );
      break;
    case 'code':
      return null;
  }
  return (
    <div className="param" title={spec.description}>
      <label htmlFor={id}>
        {spec.label}
        {spec.sparsityKnob && <span className="knob-tag">sparsity knob</span>}
      </label>
      {control}
      <span className="param-help">{spec.description}</span>
    </div>
  );
}
