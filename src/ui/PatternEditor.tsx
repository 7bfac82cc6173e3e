/**
 * The mask_mod editor: CodeMirror 6 with JavaScript highlighting, the example patterns, and the
 * current error marked on its line (gutter marker, underline and the message on hover).
 */
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { javascript } from '@codemirror/lang-javascript';
import {
  bracketMatching,
  HighlightStyle,
  indentOnInput,
  syntaxHighlighting,
} from '@codemirror/language';
import { lintGutter, setDiagnostics, type Diagnostic } from '@codemirror/lint';
import { EditorState } from '@codemirror/state';
import {
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from '@codemirror/view';
import { tags } from '@lezer/highlight';
import { useEffect, useId, useRef } from 'react';
import { MASK_PRESETS } from './maskPresets';
import type { PatternError } from './store';

/** Syntax colours from the page's CSS variables, so they follow the light and dark themes. */
const highlightStyle = HighlightStyle.define([
  {
    tag: [tags.keyword, tags.controlKeyword, tags.definitionKeyword],
    color: 'var(--code-keyword)',
  },
  { tag: [tags.number, tags.bool, tags.null], color: 'var(--code-number)' },
  { tag: [tags.string, tags.regexp], color: 'var(--code-string)' },
  {
    tag: [tags.comment, tags.lineComment, tags.blockComment],
    color: 'var(--code-comment)',
    fontStyle: 'italic',
  },
  {
    tag: [tags.function(tags.variableName), tags.function(tags.definition(tags.variableName))],
    color: 'var(--code-function)',
  },
  { tag: [tags.operator, tags.punctuation], color: 'var(--muted)' },
]);

/** The error as a CodeMirror diagnostic spanning its line (none when the line is unknown). */
function diagnosticsOf(state: EditorState, error: PatternError | null): Diagnostic[] {
  if (!error || error.line === null || error.line < 1 || error.line > state.doc.lines) return [];
  const line = state.doc.line(error.line);
  return [{ from: line.from, to: line.to, severity: 'error', message: error.message }];
}

export function PatternEditor({
  value,
  error,
  onChange,
}: {
  value: string;
  error: PatternError | null;
  onChange: (source: string) => void;
}) {
  const labelId = useId();
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  // The latest callback, read by the editor's listener (created once).
  const changeHandler = useRef(onChange);
  useEffect(() => {
    changeHandler.current = onChange;
  }, [onChange]);

  useEffect(() => {
    if (!host.current) return;
    const editor = new EditorView({
      parent: host.current,
      state: EditorState.create({
        doc: value,
        extensions: [
          lineNumbers(),
          highlightActiveLineGutter(),
          highlightActiveLine(),
          history(),
          indentOnInput(),
          bracketMatching(),
          syntaxHighlighting(highlightStyle),
          javascript(),
          lintGutter(),
          keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
          EditorView.contentAttributes.of({
            'aria-labelledby': labelId,
            'data-testid': 'pattern-source',
          }),
          EditorView.updateListener.of((update) => {
            if (update.docChanged) changeHandler.current(update.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = editor;
    return () => {
      editor.destroy();
      view.current = null;
    };
    // The editor is created once; later values arrive through the effect below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // Text set from outside (an example, a shared link) replaces the document.
  useEffect(() => {
    const editor = view.current;
    if (!editor || editor.state.doc.toString() === value) return;
    editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: value } });
  }, [value]);

  useEffect(() => {
    const editor = view.current;
    if (!editor) return;
    editor.dispatch(setDiagnostics(editor.state, diagnosticsOf(editor.state, error)));
  }, [error, value]);

  return (
    <div className="code-editor">
      <div className="presets" role="group" aria-label="Example patterns">
        <span className="muted">Examples:</span>
        {MASK_PRESETS.map((preset) => (
          <button
            key={preset.name}
            type="button"
            className="small"
            aria-pressed={preset.source === value}
            onClick={() => onChange(preset.source)}
          >
            {preset.name}
          </button>
        ))}
      </div>
      <p id={labelId} className="code-label">
        <code>mask_mod(b, h, q_idx, kv_idx)</code> in JavaScript; <code>window</code> and{' '}
        <code>sinks</code> are in scope. It runs in a worker: a pattern that runs too long is
        stopped.
      </p>
      <div
        ref={host}
        className={error?.line ? 'code-box cm-host has-error' : 'code-box cm-host'}
        data-error-line={error?.line ?? undefined}
      />
    </div>
  );
}
