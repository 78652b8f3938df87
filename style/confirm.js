// Forms that carry data-confirm ask before they submit: the console's script policy runs no
// inline handlers, so this one listener (from this origin) does what onsubmit="confirm(…)" did.
// With data-confirm-when, it asks only when the form holds an element matching that selector.
// It listens while capturing, so a declined form never reaches the console's own handlers.
document.addEventListener('submit', (event) => {
  const form = event.target;
  const message = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (!message) return;
  const when = form.dataset.confirmWhen;
  if (when && !form.querySelector(when)) return;
  if (!window.confirm(message)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
