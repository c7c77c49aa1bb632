// Building the page from data without ever parsing data as HTML: every value is a
// text node or an attribute set through the DOM, so a tenant named "<img onerror=…>"
// is shown as those characters. Nothing in the console assigns innerHTML.

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {{[name: string]: string | number | boolean | null | undefined | EventListener}} Props
 */

/**
 * An element: `props` are attributes (`on…` functions are listeners; `false`/`null`
 * leave the attribute out; `true` sets it empty), children are nodes or text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, '');
    } else if (value !== false && value !== null && value !== undefined) {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

/**
 * @param {Element} parent
 * @param {(Child | Child[])[]} children
 */
export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(typeof child === 'object' ? child : String(child));
  }
}

/**
 * Empties `parent`, then appends `children`.
 * @param {Element} parent
 * @param {...(Child | Child[])} children
 */
export function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

/**
 * A labelled input. The label wraps nothing: it names the input by `for`, which screen
 * readers and axe both understand, and a hint is tied by aria-describedby.
 * @param {string} label
 * @param {string} name
 * @param {Props} [props] attributes of the input (type, required, autocomplete…)
 * @param {string} [hint]
 */
export function field(label, name, props = {}, hint) {
  const id = `field-${name}-${++fieldCount}`;
  const hintId = hint ? `${id}-hint` : null;
  const input = h('input', { id, name, type: 'text', 'aria-describedby': hintId, ...props });
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    input,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
}
let fieldCount = 0;

/**
 * A labelled select of `options` ([value, text] pairs).
 * @param {string} label
 * @param {string} name
 * @param {[string, string][]} options
 * @param {Props} [props]
 */
export function selectField(label, name, options, props = {}) {
  const id = `field-${name}-${++fieldCount}`;
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('select', { id, name, ...props },
      options.map(([value, text]) => h('option', { value }, text))));
}

/**
 * A form whose submit runs `action` with its fields' values, with the button disabled
 * meanwhile and a problem's detail shown in the form's own alert region.
 * @param {{label: string, action: (values: {[name: string]: string}, form: HTMLFormElement) => Promise<void>, props?: Props}} options
 * @param {...(Child | Child[])} fields
 */
export function form({ label, action, props = {} }, ...fields) {
  const status = h('div', { class: 'form-status', role: 'alert' });
  const button = h('button', { type: 'submit' }, label);
  const element = h('form', props, ...fields, status, h('div', { class: 'actions' }, button));
  element.addEventListener('submit', async (event) => {
    event.preventDefault();
    replace(status);
    status.className = 'form-status';
    button.disabled = true;
    /** @type {{[name: string]: string}} */
    const values = {};
    for (const [name, value] of new FormData(element)) values[name] = String(value);
    try {
      await action(values, element);
    } catch (error) {
      showError(status, error);
    } finally {
      button.disabled = false;
    }
  });
  return element;
}

/**
 * The problem's `detail` (never the raw body), with the field errors of a 422.
 * @param {Element} region
 * @param {unknown} error
 */
export function showError(region, error) {
  region.className = 'form-status error';
  const problem = /** @type {{detail?: string, errors?: {field: string, message: string}[]}} */ (
    error && typeof error === 'object' && 'problem' in error ? error.problem : {});
  const detail = problem.detail ?? (error instanceof Error ? error.message : 'Something went wrong.');
  replace(region,
    h('p', {}, detail),
    problem.errors?.length
      ? h('ul', {}, problem.errors.map((e) => h('li', {}, `${e.field}: ${e.message}`)))
      : null);
}

/**
 * A success message in a region (announced: the region is a status).
 * @param {Element} region
 * @param {string} message
 */
export function showDone(region, message) {
  region.className = 'form-status done';
  replace(region, h('p', {}, message));
}

/**
 * A table with a caption; `columns` are [heading, cell-of-row] pairs.
 * @template T
 * @param {string} caption
 * @param {[string, (row: T) => Child | Child[]][]} columns
 * @param {T[]} rows
 * @param {string} [empty] shown instead when there are no rows
 */
export function table(caption, columns, rows, empty = 'Nothing here yet.') {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, columns.map(([heading]) => h('th', { scope: 'col' }, heading)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(row))))))));
}

/**
 * A button that runs `action`, disabled meanwhile; a failure goes to `region`.
 * @param {string} label
 * @param {() => Promise<void>} action
 * @param {Element} region
 * @param {Props} [props]
 */
export function actionButton(label, action, region, props = {}) {
  const button = h('button', { type: 'button', ...props }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      showError(region, error);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** @param {string | null | undefined} iso */
export function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return h('time', { datetime: iso }, date.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }) + ' UTC');
}

/**
 * Minor units as money: 250000 KES cents → "KES 2,500.00".
 * @param {number} minor
 * @param {string} currency
 */
export function money(minor, currency) {
  return `${currency} ${(minor / 100).toLocaleString('en-GB', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** Tells screen readers what just happened (the live region of index.html). */
export function announce(/** @type {string} */ message) {
  const region = document.getElementById('announcer');
  if (region) region.textContent = message;
}
