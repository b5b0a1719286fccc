// The sender's status page. The access token travels in the URL fragment (#t=...), which browsers never send to a
// server, so it reaches no log; this script reads it and asks the API for the escrow with it.
(function () {
  'use strict';
  var byId = function (id) { return document.getElementById(id); };
  var id = decodeURIComponent(location.pathname.split('/').pop() || '');
  var token = new URLSearchParams(location.hash.slice(1)).get('t');

  var explanations = {
    awaiting_payment: ['Your payment is not authorised yet, so your message has not been sent.',
      'Once your card is authorised, the message goes to {name}. If it is not authorised within the hour, the request lapses and you pay nothing.'],
    held: ['Your payment is held on your card, not taken. Your message was sent to {name}.',
      'If {name} replies before the deadline, the payment is taken and the reply is e-mailed to you. If not, the hold is cancelled and you pay nothing.'],
    processing: ['{name} replied. Your payment is being taken and paid out.', 'Nothing: you have the reply by e-mail.'],
    pending_user_setup: ['{name} replied and your payment was taken. {name} is setting up payouts to receive it.', 'Nothing: you have the reply by e-mail.'],
    transfer_failed: ['{name} replied and your payment was taken. The payout to {name} is being tried again.', 'Nothing: you have the reply by e-mail.'],
    refund_pending: ['No reply came before the deadline. The hold on your payment is being cancelled.', 'You will not be charged; an e-mail confirms it.'],
    released: ['{name} replied. Your payment was taken and paid to {name}.', 'Nothing more: the reply was e-mailed to you.'],
    refunded: ['Your payment was given back: the hold was cancelled (or the payment refunded).', 'Nothing more: you are not charged.'],
    payment_failed: ['The payment failed, so your message was not sent.', 'You can send your message again with another card.'],
    cancelled: ['The payment was never completed, so your message was not sent.', 'Nothing more: you were not charged.']
  };

  function refused() {
    byId('loading').hidden = true;
    byId('escrow').hidden = true;
    byId('refused').hidden = false;
  }

  function money(minor, currency) {
    var digits = 2;
    try { digits = new Intl.NumberFormat('en', { style: 'currency', currency: currency }).resolvedOptions().maximumFractionDigits; } catch (e) { digits = 2; }
    return (minor / Math.pow(10, digits)).toFixed(digits) + ' ' + currency;
  }

  function timeLeft(until) {
    var ms = new Date(until).getTime() - Date.now();
    if (ms <= 0) { return 'the deadline has passed'; }
    var minutes = Math.floor(ms / 60000);
    var hours = Math.floor(minutes / 60);
    return (hours > 0 ? hours + ' h ' : '') + (minutes % 60) + ' min left';
  }

  function render(e) {
    var name = e.recipientDisplayName || 'the recipient';
    var words = explanations[e.status] || ['', ''];
    var fill = function (s) { return s.split('{name}').join(name); };
    byId('status').textContent = e.status;
    byId('explanation').textContent = fill(words[0]);
    byId('amount').textContent = money(e.amountMinor, e.currency);
    byId('recipient').textContent = name;
    byId('deadline').textContent = new Date(e.expiresAt).toUTCString();
    byId('time-left').textContent = e.status === 'held' || e.status === 'awaiting_payment' ? timeLeft(e.expiresAt) : 'no longer counts';
    byId('next').textContent = fill(words[1]);
    byId('loading').hidden = true;
    byId('escrow').hidden = false;
  }

  if (!token || !id) { refused(); return; }
  fetch('/v1/escrows/' + encodeURIComponent(id), { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store', credentials: 'omit' })
    .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error('refused')); })
    .then(render, refused);
})();
