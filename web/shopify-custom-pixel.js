// pinrelay: the Pinterest tag as a Shopify custom pixel.
//
// Paste this whole file into Shopify admin > Settings > Customer events > Add custom pixel,
// set the three constants below, save, then Connect. Shopify runs it in its custom-pixel
// sandbox: the globals `analytics`, `init` and `api` are Shopify's, and the shop's page itself
// (its DOM) is out of reach. What it does and why: docs/browser-side.md.
//
// Shopify event       -> Pinterest tag call
// page_viewed            pintrk('page')
// product_viewed         pintrk('track', 'pagevisit', {...})
// search_submitted       pintrk('track', 'search', {...})
// product_added_to_cart  pintrk('track', 'addtocart', {...})
// checkout_completed     pintrk('track', 'checkout', {event_id, ...}), event_id equal to the one
//                        pinrelay gives the order's orders/create webhook, so Pinterest counts
//                        the order once.
'use strict';

// ---- Settings: edit these three lines --------------------------------------------------------
// Your Pinterest tag id (digits only), as Pinterest Ads Manager shows it under Conversions.
const PINTEREST_TAG_ID = 'YOUR_PINTEREST_TAG_ID';
// The SAME text as pinrelay's SHOPIFY_EVENT_ID_TEMPLATE (pinrelay's default is {order_id}).
// The browser knows only {order_id} and {checkout_token}; literal text around them is fine
// ('order-{order_id}'). With any other placeholder ({order_number}, {name},
// {confirmation_number}, {cart_token}) this pixel sends no checkout event at all
// (pinrelay still sends it): an event_id that cannot match would count the order twice.
// Several shops on one Pinterest ad account: pinrelay prefixes with the shop only the ids of
// templates without {order_id} or {checkout_token} (those are unique across Shopify), which this
// pixel never sends, so the same template works in each shop's pixel (docs/sources.md).
const EVENT_ID_TEMPLATE = '{order_id}';
// The SAME value as pinrelay's SHOPIFY_CONTENT_ID_FIELD: 'product_id', 'variant_id' or 'sku'.
const CONTENT_ID_FIELD = 'product_id';
// ----------------------------------------------------------------------------------------------

(function pinrelayPinterestPixel() {
  const CORE_JS = 'https://s.pinimg.com/ct/core.js';
  // Pinterest uses the tag for ads: measuring and targeting them. Shopify reports that as
  // "marketing", and handing the data to Pinterest for ads is "sale or sharing" in the US
  // states that give an opt-out, so both must be allowed. Analytics consent alone is not enough.
  const REQUIRED_CONSENT = ['marketingAllowed', 'saleOfDataAllowed'];
  // Events that arrive before consent wait here, already mapped (so without personal data), in
  // memory, for this page only.
  const QUEUE_LIMIT = 50;
  const CONTENT_ID_FIELDS = ['product_id', 'variant_id', 'sku'];

  // The sandbox's globals, read through typeof so that a missing one is not a ReferenceError.
  const hasAnalytics = typeof analytics !== 'undefined' && !!analytics && typeof analytics.subscribe === 'function';
  const shopifyInit = typeof init !== 'undefined' ? init : null;
  const shopifyApi = typeof api !== 'undefined' ? api : null;

  function warn(message) {
    console.warn('[pinrelay pixel] ' + message);
  }

  if (!/^\d+$/.test(PINTEREST_TAG_ID)) {
    warn('PINTEREST_TAG_ID is not set (digits only): the Pinterest tag is not loaded.');
    return;
  }
  if (!hasAnalytics) {
    warn('no Shopify `analytics` here: paste this file into Settings > Customer events.');
    return;
  }
  const contentIdField = CONTENT_ID_FIELDS.indexOf(CONTENT_ID_FIELD) >= 0 ? CONTENT_ID_FIELD : 'product_id';
  if (contentIdField !== CONTENT_ID_FIELD) {
    warn('CONTENT_ID_FIELD must be one of ' + CONTENT_ID_FIELDS.join(', ') + '; using product_id.');
  }
  const templateCheck = renderTemplate(EVENT_ID_TEMPLATE, { order_id: 'x', checkout_token: 'x' });
  if (templateCheck.unsupported.length) {
    warn('EVENT_ID_TEMPLATE uses {' + templateCheck.unsupported.join('}, {') + '}, which the browser ' +
      'cannot know: no checkout event is sent from the browser (pinrelay sends it).');
  }

  // ---- Consent ----------------------------------------------------------------------------------
  // init.customerPrivacy is the state when the page loaded; visitorConsentCollected tells of a
  // later choice (a banner on this page). Missing state counts as "not allowed".
  let privacy = shopifyInit ? shopifyInit.customerPrivacy : null;
  let queue = [];
  let tagLoaded = false;

  function consentGiven() {
    return !!privacy && REQUIRED_CONSENT.every((flag) => privacy[flag] === true);
  }

  if (shopifyApi && shopifyApi.customerPrivacy && typeof shopifyApi.customerPrivacy.subscribe === 'function') {
    shopifyApi.customerPrivacy.subscribe('visitorConsentCollected', (event) => {
      privacy = event ? event.customerPrivacy : null;
      if (consentGiven()) {
        const waiting = queue;
        queue = [];
        waiting.forEach(callPintrk);
      } else {
        // A refusal: what was collected while waiting is dropped, never sent.
        queue = [];
      }
    });
  }

  // Pinterest's base code, written out: a queueing stub until core.js replaces it.
  function loadTag() {
    if (tagLoaded) {
      return;
    }
    tagLoaded = true;
    if (!window.pintrk) {
      window.pintrk = function () {
        window.pintrk.queue.push(Array.prototype.slice.call(arguments));
      };
      window.pintrk.queue = [];
      window.pintrk.version = '3.0';
      const script = document.createElement('script');
      script.async = true;
      script.src = CORE_JS;
      (document.head || document.documentElement).appendChild(script);
    }
    // No `em` or other customer data: the tag gets none from this pixel.
    window.pintrk('load', PINTEREST_TAG_ID);
  }

  function callPintrk(args) {
    loadTag();
    window.pintrk.apply(null, args);
  }

  function send(args) {
    if (consentGiven()) {
      callPintrk(args);
      return;
    }
    queue.push(args);
    if (queue.length > QUEUE_LIMIT) {
      queue.shift();
    }
  }

  // ---- Mapping ----------------------------------------------------------------------------------
  // Shopify ids arrive as digits or as GIDs ('gid://shopify/OrderIdentity/123'): keep the number,
  // as a string (Number() would round ids above 2^53).
  function numericId(value) {
    if (value === null || value === undefined || value === '') {
      return '';
    }
    const text = String(value);
    const gid = /^gid:\/\/shopify\/[^/]+\/(\d+)/.exec(text);
    return gid ? gid[1] : text;
  }

  // The same rules as Python's str.format_map, which pinrelay uses: {name} is a value, {{ and }}
  // are literal braces. Anything else in braces is a placeholder the browser cannot fill.
  function renderTemplate(template, values) {
    const unsupported = [];
    const empty = [];
    const text = String(template).replace(/\{\{|\}\}|\{([^{}]*)\}/g, (match, name) => {
      if (match === '{{') {
        return '{';
      }
      if (match === '}}') {
        return '}';
      }
      if (!Object.prototype.hasOwnProperty.call(values, name)) {
        unsupported.push(name);
        return '';
      }
      if (!values[name]) {
        empty.push(name);
      }
      return values[name];
    });
    return { text: text, unsupported: unsupported, empty: empty };
  }

  function put(target, key, value) {
    if (value !== null && value !== undefined && value !== '') {
      target[key] = value;
    }
  }

  function contentId(variant) {
    if (contentIdField === 'variant_id') {
      return numericId(variant.id);
    }
    if (contentIdField === 'sku') {
      return variant.sku ? String(variant.sku) : '';
    }
    return numericId(variant.product && variant.product.id);
  }

  // One Pinterest line item from a Shopify ProductVariant (product_viewed, cart lines, checkout
  // line items all carry one).
  function lineItem(variant, name, quantity) {
    const product = variant.product || {};
    const item = {};
    put(item, 'product_id', contentId(variant));
    put(item, 'product_name', name || product.title);
    put(item, 'product_price', variant.price ? variant.price.amount : null);
    put(item, 'product_quantity', quantity);
    put(item, 'product_variant_id', numericId(variant.id));
    put(item, 'product_variant', variant.title);
    put(item, 'product_brand', product.vendor);
    put(item, 'product_category', product.type);
    return item;
  }

  // A search box can receive an email address or a phone number; such a query is not sent.
  // First the query is folded: NFKC turns the look-alikes keyboards produce into plain text (the
  // full-width ＠ and ． of East Asian input, ﹫, full-width digits), the ideographic full stop
  // and "(at)" / "[dot]" spellings become @ and ., runs of spaces one space, and the spaces
  // around @ and . go. Every pattern below is linear in the query: each either starts with a
  // fixed character or repeats a class that cannot match what follows it, so no position of the
  // query is scanned again from the next one (the pattern before this one, /[^\s@]+@.../, was
  // quadratic: 80 KB took seconds in V8 without its newest regexp optimiser).
  const FOLD_AT = /[(\[{]\s*at\s*[)\]}]/gi;
  const FOLD_DOT = /[(\[{]\s*dot\s*[)\]}]|[\u3002\uff61]/gi;
  const EMAIL = /[^\s@]@[^\s@]+\.[^\s@]/;
  const PHONE = /(?:\d[\s().+\-\u2010-\u2015\u2212\u30fc]*){7,}/;
  function looksPersonal(text) {
    const folded = String(text).normalize('NFKC')
      .replace(FOLD_AT, '@')
      .replace(FOLD_DOT, '.')
      .replace(/\s+/g, ' ')
      .replace(/ ?([@.]) ?/g, '$1');
    return EMAIL.test(folded) || PHONE.test(folded);
  }

  function pageVisit(data) {
    const variant = data.productVariant;
    if (!variant) {
      return null;
    }
    const fields = { line_items: [lineItem(variant, variant.product && variant.product.title, null)] };
    put(fields, 'currency', variant.price ? variant.price.currencyCode : null);
    return ['track', 'pagevisit', fields];
  }

  function search(data) {
    const query = data.searchResult ? String(data.searchResult.query || '').trim() : '';
    const fields = {};
    if (query && !looksPersonal(query)) {
      fields.search_query = query;
    }
    return ['track', 'search', fields];
  }

  function addToCart(data) {
    const line = data.cartLine;
    if (!line || !line.merchandise) {
      return null;
    }
    const variant = line.merchandise;
    const total = line.cost ? line.cost.totalAmount : null;
    const fields = {
      order_quantity: line.quantity,
      line_items: [lineItem(variant, variant.product && variant.product.title, line.quantity)],
    };
    put(fields, 'value', total ? total.amount : null);
    put(fields, 'currency', (total && total.currencyCode) || (variant.price ? variant.price.currencyCode : null));
    return ['track', 'addtocart', fields];
  }

  function checkout(data) {
    const order = data.checkout;
    if (!order) {
      return null;
    }
    const eventId = renderTemplate(EVENT_ID_TEMPLATE, {
      order_id: numericId(order.order && order.order.id),
      checkout_token: order.token ? String(order.token) : '',
    });
    if (eventId.unsupported.length) {
      return null; // warned once at start
    }
    if (eventId.empty.length || !eventId.text) {
      warn('checkout_completed without {' + eventId.empty.join('}, {') + '}: no checkout event sent.');
      return null;
    }
    const lines = order.lineItems || [];
    const fields = {
      event_id: eventId.text,
      order_quantity: lines.reduce((sum, line) => sum + (Number(line.quantity) || 0), 0),
      line_items: lines.filter((line) => line.variant).map((line) => lineItem(line.variant, line.title, line.quantity)),
    };
    // pinrelay's value is the order's subtotal (after discounts, before shipping and taxes).
    const amount = order.subtotalPrice || order.totalPrice;
    put(fields, 'value', amount ? amount.amount : null);
    put(fields, 'currency', order.currencyCode || (amount ? amount.currencyCode : null));
    put(fields, 'order_id', numericId(order.order && order.order.id));
    return ['track', 'checkout', fields];
  }

  function handler(name, mapping) {
    return (event) => {
      try {
        const args = mapping((event && event.data) || {});
        if (args) {
          send(args);
        }
      } catch (error) {
        warn(name + ': ' + error);
      }
    };
  }

  // Written out one by one: Shopify's pixel editor looks for literal analytics.subscribe calls.
  analytics.subscribe('page_viewed', handler('page_viewed', () => ['page']));
  analytics.subscribe('product_viewed', handler('product_viewed', pageVisit));
  analytics.subscribe('search_submitted', handler('search_submitted', search));
  analytics.subscribe('product_added_to_cart', handler('product_added_to_cart', addToCart));
  analytics.subscribe('checkout_completed', handler('checkout_completed', checkout));
})();
