import { useId } from 'react';
import { getMethod, methodsFor } from '../methods/registry';
import type { MethodName, ParamValue, Phase } from '../methods/types';
import { ParamControl } from './ParamControl';
import type { PhaseChoice } from './runConfig';

/** A method for one phase, with controls generated from its ParamSpecs. */
export function MethodPicker({
  phase,
  choice,
  onMethod,
  onParam,
}: {
  phase: Phase;
  choice: PhaseChoice;
  onMethod: (method: MethodName) => void;
  onParam: (key: string, value: ParamValue) => void;
}) {
  const id = useId();
  const method = getMethod(choice.method);
  const title = phase === 'prefill' ? 'Prefill method' : 'Decode method';
  return (
    <fieldset className="method-picker" data-testid={`${phase}-picker`}>
      <legend>{title}</legend>
      <div className="field">
        <label htmlFor={id} className="visually-hidden">
          {title}
        </label>
        <select
          id={id}
          data-testid={`${phase}-method`}
          value={choice.method}
          onChange={(e) => onMethod(e.target.value as MethodName)}
        >
          {methodsFor(phase).map((m) => (
            <option key={m.name} value={m.name}>
              {m.label}
            </option>
          ))}
        </select>
      </div>
      <p className="param-help">{method.description}</p>
      {method.runUnavailable && <p className="data-note">{method.runUnavailable}</p>}
      {method.params.map((spec) =>
        spec.kind === 'code' ? (
          <p key={spec.key} className="param-help" data-testid="uses-pattern-editor">
            Runs the <code>mask_mod</code> of the pattern editor (Sparsity patterns, below).
          </p>
        ) : (
          <ParamControl
            key={spec.key}
            spec={spec}
            value={choice.params[spec.key]}
            onChange={(value) => onParam(spec.key, value)}
          />
        ),
      )}
    </fieldset>
  );
}
