// pinrelay: record the shopper's consent choice with the Shopify cart, for the server side.
//
// Shopify's orders/create webhook says nothing of what the shopper chose in the shop's cookie
// banner. This snippet stores what Shopify's Customer Privacy API reports for this visitor
// (https://shopify.dev/docs/api/customer-privacy) as the cart attribute `_pinrelay_consent`
// (POST /cart/update.js), beside `_epik`; the order carries it in note_attributes and pinrelay's
// consent policy (CONSENT_POLICY, docs/privacy.md) decides from it whether, and how, the order
// reaches Pinterest. A choice made later on the page (the banner's `visitorConsentCollected`
// document event) is stored again, so the cart holds the choice in force when the order is placed.
//
// What it stores: a JSON text of consent flags and a region, nothing about the person:
//   {"v":1,"via":"shopify","marketing":"no","sale_of_data":"","analytics":"yes","preferences":"yes",
//    "allowed":{"marketing":false,"sale_of_data":true,"analytics":true,"preferences":true},"region":"DEBE"}
//   marketing, sale_of_data, analytics, preferences: customerPrivacy.currentVisitorConsent(),
//     "yes" or "no" as the visitor chose, "" while they have not chosen;
//   allowed: marketingAllowed(), saleOfDataAllowed(), analyticsProcessingAllowed(),
//     preferencesProcessingAllowed() (what Shopify applies: the choice, the merchant's settings and
//     the visitor's location together; what pixels, the Pinterest pixel included, obey);
//   region: getRegion(), the visitor's country and region code as Shopify locates them
//     ("DEBE", "USCA"), "" when Shopify does not give it.
// Recording the choice needs no consent itself: it is what lets the shop honour a refusal.
//
// Install: Online Store > Themes > ... > Edit code > Assets > Add a new asset, name it
// pinrelay-consent.js, paste this file; then in layout/theme.liquid, before </head>:
//   <script src="{{ 'pinrelay-consent.js' | asset_url }}" defer></script>
//
// For debugging: window.pinrelayConsent is a Promise of what the last recording did: 'stored',
// 'unchanged' (the cart has it already: no request, or one GET), 'no-api' (no Customer Privacy
// API on this page: nothing stored) or 'failed' (retried on the next page view or choice).
'use strict';

(function pinrelayConsent() {
  const CART_ATTRIBUTE = '_pinrelay_consent';
  // localStorage: {value, cart}: the text stored and the cart it was stored in, so a page view
  // whose choice has not changed makes no request at all.
  const STATE_KEY = 'pinrelay:consent';
  const CHOICES = ['marketing', 'sale_of_data', 'analytics', 'preferences'];
  const ALLOWED = {
    marketing: 'marketingAllowed',
    sale_of_data: 'saleOfDataAllowed',
    analytics: 'analyticsProcessingAllowed',
    preferences: 'preferencesProcessingAllowed',
  };
  // ISO 3166-1 alpha-2, then an optional subdivision code, as getRegion() gives them
  const REGION_PATTERN = /^[A-Za-z]{2}[A-Za-z0-9]{0,3}$/;

  function readCookie(name) {
    const prefix = name + '=';
    const found = document.cookie.split(/;\s*/).filter((part) => part.indexOf(prefix) === 0)[0];
    if (!found) {
      return '';
    }
    try {
      return decodeURIComponent(found.slice(prefix.length));
    } catch (error) {
      return '';
    }
  }

  function readState() {
    try {
      const state = JSON.parse(window.localStorage.getItem(STATE_KEY) || 'null');
      return state && typeof state.value === 'string' ? state : { value: '', cart: '' };
    } catch (error) {
      return { value: '', cart: '' };
    }
  }

  function writeState(value, cart) {
    try {
      window.localStorage.setItem(STATE_KEY, JSON.stringify({ value: value, cart: cart }));
    } catch (error) {
      // Storage blocked: the GET /cart.js check still prevents a second post.
    }
  }

  // Shopify's cart token, without the '?key=...' that newer tokens carry.
  function tokenOnly(token) {
    return String(token || '').split('?')[0];
  }

  // The record of what the Customer Privacy API reports now (its methods are read, never its
  // internals; a method the API lacks counts as "" / not allowed).
  function currentRecord(privacy) {
    const visitor = typeof privacy.currentVisitorConsent === 'function' ? privacy.currentVisitorConsent() || {} : {};
    const record = { v: 1, via: 'shopify' };
    CHOICES.forEach((name) => {
      record[name] = visitor[name] === 'yes' || visitor[name] === 'no' ? visitor[name] : '';
    });
    record.allowed = {};
    CHOICES.forEach((name) => {
      const method = privacy[ALLOWED[name]];
      record.allowed[name] = typeof method === 'function' && method.call(privacy) === true;
    });
    const region = typeof privacy.getRegion === 'function' ? String(privacy.getRegion() || '') : '';
    record.region = REGION_PATTERN.test(region) ? region.toUpperCase() : '';
    return JSON.stringify(record);
  }

  async function store(value) {
    const state = readState();
    const cartCookie = tokenOnly(readCookie('cart'));
    // Stored in this cart already (or the cart cookie cannot be read): no request at all.
    if (state.value === value && state.cart && (!cartCookie || state.cart === cartCookie)) {
      return 'unchanged';
    }
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const root = (window.Shopify && window.Shopify.routes && window.Shopify.routes.root) || '/';
    try {
      const current = await fetch(root + 'cart.js', { headers: headers, credentials: 'same-origin' });
      if (current.ok) {
        const cart = await current.json();
        if (cart && cart.attributes && cart.attributes[CART_ATTRIBUTE] === value) {
          writeState(value, tokenOnly(cart.token) || cartCookie || 'unknown');
          return 'unchanged';
        }
      }
      const attributes = {};
      attributes[CART_ATTRIBUTE] = value;
      const response = await fetch(root + 'cart/update.js', {
        method: 'POST',
        headers: headers,
        credentials: 'same-origin',
        body: JSON.stringify({ attributes: attributes }),
      });
      if (!response.ok) {
        return 'failed';
      }
      const cart = await response.json().catch(() => null);
      writeState(value, tokenOnly(cart && cart.token) || tokenOnly(readCookie('cart')) || 'unknown');
      return 'stored';
    } catch (error) {
      return 'failed';
    }
  }

  // Resolves the Customer Privacy API, or null when this page has none.
  function privacyApi() {
    const shopify = window.Shopify;
    if (shopify && shopify.customerPrivacy) {
      return Promise.resolve(shopify.customerPrivacy);
    }
    if (!shopify || typeof shopify.loadFeatures !== 'function') {
      return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      shopify.loadFeatures([{ name: 'consent-tracking-api', version: '0.1' }], (error) => {
        resolve(!error && window.Shopify.customerPrivacy ? window.Shopify.customerPrivacy : null);
      });
    });
  }

  // One recording at a time, in the order asked: a choice made while the first is under way is
  // stored after it, so the cart ends with the latest.
  let last = Promise.resolve('');
  function record(privacy) {
    last = last.then(() => store(currentRecord(privacy)));
    window.pinrelayConsent = last;
    return last;
  }

  window.pinrelayConsent = privacyApi().then((privacy) => {
    if (!privacy) {
      return 'no-api';
    }
    // The banner's choice on this page: Shopify updates currentVisitorConsent() before it fires.
    document.addEventListener('visitorConsentCollected', () => {
      record(window.Shopify.customerPrivacy || privacy);
    });
    return record(privacy);
  });
})();
