// pinrelay: the storefront's part of each Shopify order: Pinterest's click id (epik) and the
// shopper's consent choice, kept with the cart so that the orders/create webhook carries them.
//
// 1. `_epik`: a visitor who clicks a Pinterest ad lands with ?epik=... in the URL, and a Pinterest
//    tag on the storefront keeps it in the `_epik` cookie. The orders/create webhook shows it only
//    when the landing page of the ordering visit had it. This snippet stores it once as the cart
//    attribute `_epik` (POST /cart/update.js), so orders/create carries it in note_attributes and
//    pinrelay sends it to Pinterest as click_id; only with the shopper's consent (below).
// 2. `_pinrelay_consent`: what Shopify's Customer Privacy API
//    (https://shopify.dev/docs/api/customer-privacy) reports for this visitor, so that pinrelay's
//    consent policy (CONSENT_POLICY, docs/privacy.md) can decide whether, and how, the order
//    reaches Pinterest. Stored again when the visitor answers the banner on the page (the
//    `visitorConsentCollected` document event), so the cart holds the choice in force at checkout.
//    It needs no consent itself (recording a refusal is what lets the server honour it) and holds
//    consent flags and a region, nothing about the person:
//      {"v":1,"via":"shopify","marketing":"no","sale_of_data":"","analytics":"yes","preferences":"yes",
//       "allowed":{"marketing":false,"sale_of_data":true,"analytics":true,"preferences":true},"region":"DEBE"}
//    marketing, sale_of_data, analytics, preferences: customerPrivacy.currentVisitorConsent(), "yes"
//      or "no" as the visitor chose, "" while they have not chosen;
//    allowed: marketingAllowed(), saleOfDataAllowed(), analyticsProcessingAllowed(),
//      preferencesProcessingAllowed() (the choice, the merchant's settings and the visitor's
//      location together: what pixels, the Pinterest pixel included, obey);
//    region: getRegion(), the visitor's country and region code ("DEBE", "USCA"), "" when not given.
// Each attribute is posted only when the cart does not have its value yet; all cart writes go one
// after the other (a new visitor's two first writes would otherwise each create a cart).
//
// Install: Online Store > Themes > ... > Edit code > Assets > Add a new asset, name it
// pinrelay-epik.js, paste this file; then in layout/theme.liquid, before </head>:
//   <script src="{{ 'pinrelay-epik.js' | asset_url }}" defer></script>
//
// For debugging: window.pinrelayEpik is a Promise of what this page view did with the click id:
// 'stored', 'already-stored', 'no-epik', 'no-consent' or 'failed' (a failed post is retried on
// the next page view); window.pinrelayConsent, of what the last recording of the choice did:
// 'stored', 'already-stored', 'no-api' (no Customer Privacy API on this page) or 'failed'.
'use strict';

(function pinrelayTheme() {
  // The click id is marketing data that reaches Pinterest. With true it is stored only when
  // Shopify's Customer Privacy API allows marketing and the sale/sharing of data (the rule of
  // the custom pixel too). Set false only if you have another legal basis.
  const REQUIRE_CONSENT = true;
  const EPIK_ATTRIBUTE = '_epik';
  const CONSENT_ATTRIBUTE = '_pinrelay_consent';
  // localStorage per attribute: {value, cart}: the value and the cart it was stored in ('' while a
  // post is still to succeed).
  const STATE_KEYS = { _epik: 'pinrelay:epik', _pinrelay_consent: 'pinrelay:consent' };
  // Pinterest's click ids are short base64-like strings; anything else is not stored.
  const EPIK_PATTERN = /^[A-Za-z0-9._~+\/=-]{1,500}$/;
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

  function readState(attribute) {
    try {
      const state = JSON.parse(window.localStorage.getItem(STATE_KEYS[attribute]) || 'null');
      if (state && typeof state.epik === 'string' && attribute === EPIK_ATTRIBUTE) {
        return { value: state.epik, cart: state.cart || '' }; // written by this snippet before it kept the choice too
      }
      return state && typeof state.value === 'string' ? state : { value: '', cart: '' };
    } catch (error) {
      return { value: '', cart: '' };
    }
  }

  function writeState(attribute, value, cart) {
    try {
      window.localStorage.setItem(STATE_KEYS[attribute], JSON.stringify({ value: value, cart: cart }));
    } catch (error) {
      // Storage blocked: the cart check below still prevents a second post, at one GET a page.
    }
  }

  // Shopify's cart token, without the '?key=...' that newer tokens carry.
  function tokenOnly(token) {
    return String(token || '').split('?')[0];
  }

  async function store(attribute, value) {
    const state = readState(attribute);
    const cartCookie = tokenOnly(readCookie('cart'));
    // Stored in this cart already (or the cart cookie cannot be read): no request at all.
    if (state.value === value && state.cart && (!cartCookie || state.cart === cartCookie)) {
      return 'already-stored';
    }
    if (state.value !== value || state.cart) {
      writeState(attribute, value, ''); // pending: a later page view retries even without ?epik= or the cookie
    }
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const root = (window.Shopify && window.Shopify.routes && window.Shopify.routes.root) || '/';
    try {
      const current = await fetch(root + 'cart.js', { headers: headers, credentials: 'same-origin' });
      if (current.ok) {
        const cart = await current.json();
        if (cart && cart.attributes && cart.attributes[attribute] === value) {
          writeState(attribute, value, tokenOnly(cart.token) || cartCookie || 'unknown');
          return 'already-stored';
        }
      }
      const attributes = {};
      attributes[attribute] = value;
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
      writeState(attribute, value, tokenOnly(cart && cart.token) || tokenOnly(readCookie('cart')) || 'unknown');
      return 'stored';
    } catch (error) {
      return 'failed';
    }
  }

  // One cart write at a time, in the order asked (store() never rejects).
  let cartWrites = Promise.resolve('');
  function storeAttribute(attribute, value) {
    cartWrites = cartWrites.then(() => store(attribute, value));
    return cartWrites;
  }

  // The Customer Privacy API, loaded once; null when this page has none.
  let privacy = null;
  function privacyApi() {
    if (!privacy) {
      const shopify = window.Shopify;
      privacy = !shopify || typeof shopify.loadFeatures !== 'function'
        ? Promise.resolve(shopify && shopify.customerPrivacy ? shopify.customerPrivacy : null)
        : new Promise((resolve) => {
          shopify.loadFeatures([{ name: 'consent-tracking-api', version: '0.1' }], (error) => {
            resolve(!error && window.Shopify.customerPrivacy ? window.Shopify.customerPrivacy : null);
          });
        });
    }
    return privacy;
  }

  // -- the click id ---------------------------------------------------------------------------

  // The URL's epik, else the tag's cookie, else one whose post has not succeeded yet.
  function currentEpik() {
    const state = readState(EPIK_ATTRIBUTE);
    let fromUrl = '';
    try {
      fromUrl = new URLSearchParams(window.location.search).get('epik') || '';
    } catch (error) {
      fromUrl = '';
    }
    const candidates = [fromUrl, readCookie('_epik'), state.cart ? '' : state.value];
    return candidates.filter((value) => EPIK_PATTERN.test(value))[0] || '';
  }

  async function runEpik() {
    const epik = currentEpik();
    if (!epik) {
      return 'no-epik';
    }
    if (!REQUIRE_CONSENT) {
      return storeAttribute(EPIK_ATTRIBUTE, epik);
    }
    const api = await privacyApi();
    if (!api) {
      return 'no-consent'; // no Customer Privacy API on this page: nothing is stored
    }
    if (api.marketingAllowed() === true && api.saleOfDataAllowed() === true) {
      return storeAttribute(EPIK_ATTRIBUTE, epik);
    }
    // A choice made later on the page (the banner) arrives as the document event visitorConsentCollected.
    document.addEventListener('visitorConsentCollected', function later(event) {
      const detail = (event && event.detail) || {};
      if (detail.marketingAllowed === true && detail.saleOfDataAllowed === true) {
        document.removeEventListener('visitorConsentCollected', later);
        window.pinrelayEpik = storeAttribute(EPIK_ATTRIBUTE, epik);
      }
    });
    return 'no-consent';
  }

  // -- the consent choice ---------------------------------------------------------------------

  // The record of what the Customer Privacy API reports now (its documented methods only; a
  // method the API lacks counts as "" / not allowed).
  function consentRecord(api) {
    const visitor = typeof api.currentVisitorConsent === 'function' ? api.currentVisitorConsent() || {} : {};
    const record = { v: 1, via: 'shopify' };
    CHOICES.forEach((name) => {
      record[name] = visitor[name] === 'yes' || visitor[name] === 'no' ? visitor[name] : '';
    });
    record.allowed = {};
    CHOICES.forEach((name) => {
      const method = api[ALLOWED[name]];
      record.allowed[name] = typeof method === 'function' && method.call(api) === true;
    });
    const region = typeof api.getRegion === 'function' ? String(api.getRegion() || '') : '';
    record.region = REGION_PATTERN.test(region) ? region.toUpperCase() : '';
    return JSON.stringify(record);
  }

  async function runConsent() {
    const api = await privacyApi();
    if (!api) {
      return 'no-api';
    }
    // The banner's choice on this page: Shopify updates currentVisitorConsent() before it fires.
    document.addEventListener('visitorConsentCollected', () => {
      window.pinrelayConsent = storeAttribute(CONSENT_ATTRIBUTE, consentRecord(window.Shopify.customerPrivacy || api));
    });
    return storeAttribute(CONSENT_ATTRIBUTE, consentRecord(api));
  }

  window.pinrelayEpik = runEpik();
  window.pinrelayConsent = runConsent();
})();
