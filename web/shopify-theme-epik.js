// pinrelay: keep Pinterest's click id (epik) with the Shopify cart.
//
// A visitor who clicks a Pinterest ad lands with ?epik=... in the URL, and a Pinterest tag on
// the storefront keeps it in the `_epik` cookie. The orders/create webhook shows it only when
// the landing page of the ordering visit had it. This snippet stores it once as the cart
// attribute `_epik` (POST /cart/update.js), so orders/create carries it in note_attributes and
// pinrelay sends it to Pinterest as click_id.
//
// Install: Online Store > Themes > ... > Edit code > Assets > Add a new asset, name it
// pinrelay-epik.js, paste this file; then in layout/theme.liquid, before </head>:
//   <script src="{{ 'pinrelay-epik.js' | asset_url }}" defer></script>
//
// For debugging: window.pinrelayEpik is a Promise of what this page view did: 'stored',
// 'already-stored', 'no-epik', 'no-consent' or 'failed' (a failed post is retried on the next
// page view).
'use strict';

(function pinrelayEpik() {
  // The click id is marketing data that reaches Pinterest. With true it is stored only when
  // Shopify's Customer Privacy API allows marketing and the sale/sharing of data (the rule of
  // the custom pixel too). Set false only if you have another legal basis.
  const REQUIRE_CONSENT = true;
  const CART_ATTRIBUTE = '_epik';
  // localStorage: {epik, cart}: the click id and the cart it was stored in ('' while a post is
  // still to succeed).
  const STATE_KEY = 'pinrelay:epik';
  // Pinterest's click ids are short base64-like strings; anything else is not stored.
  const EPIK_PATTERN = /^[A-Za-z0-9._~+\/=-]{1,500}$/;

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
      return state && typeof state.epik === 'string' ? state : { epik: '', cart: '' };
    } catch (error) {
      return { epik: '', cart: '' };
    }
  }

  function writeState(epik, cart) {
    try {
      window.localStorage.setItem(STATE_KEY, JSON.stringify({ epik: epik, cart: cart }));
    } catch (error) {
      // Storage blocked: the cart check below still prevents a second post, at one GET a page.
    }
  }

  // Shopify's cart token, without the '?key=...' that newer tokens carry.
  function tokenOnly(token) {
    return String(token || '').split('?')[0];
  }

  // The URL's epik, else the tag's cookie, else one whose post has not succeeded yet.
  function currentEpik(state) {
    let fromUrl = '';
    try {
      fromUrl = new URLSearchParams(window.location.search).get('epik') || '';
    } catch (error) {
      fromUrl = '';
    }
    const candidates = [fromUrl, readCookie('_epik'), state.cart ? '' : state.epik];
    return candidates.filter((value) => EPIK_PATTERN.test(value))[0] || '';
  }

  // Resolves true or false: consent as Shopify's Customer Privacy API reports it on this page
  // load. A choice made later on the page (the banner) arrives as the document event
  // visitorConsentCollected and calls onLaterConsent.
  function consentNow(onLaterConsent) {
    if (!REQUIRE_CONSENT) {
      return Promise.resolve(true);
    }
    const shopify = window.Shopify;
    if (!shopify || typeof shopify.loadFeatures !== 'function') {
      return Promise.resolve(false); // no Customer Privacy API on this page: nothing is stored
    }
    return new Promise((resolve) => {
      shopify.loadFeatures([{ name: 'consent-tracking-api', version: '0.1' }], (error) => {
        const privacy = window.Shopify.customerPrivacy;
        const allowed = !error && !!privacy &&
          privacy.marketingAllowed() === true && privacy.saleOfDataAllowed() === true;
        if (!allowed) {
          document.addEventListener('visitorConsentCollected', function later(event) {
            const detail = (event && event.detail) || {};
            if (detail.marketingAllowed === true && detail.saleOfDataAllowed === true) {
              document.removeEventListener('visitorConsentCollected', later);
              onLaterConsent();
            }
          });
        }
        resolve(allowed);
      });
    });
  }

  async function storeEpik(epik) {
    const state = readState();
    const cartCookie = tokenOnly(readCookie('cart'));
    // Stored in this cart already (or the cart cookie cannot be read): no request at all.
    if (state.epik === epik && state.cart && (!cartCookie || state.cart === cartCookie)) {
      return 'already-stored';
    }
    if (state.epik !== epik || state.cart) {
      writeState(epik, ''); // pending: a later page view retries even without ?epik= or the cookie
    }
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const root = (window.Shopify && window.Shopify.routes && window.Shopify.routes.root) || '/';
    try {
      const current = await fetch(root + 'cart.js', { headers: headers, credentials: 'same-origin' });
      if (current.ok) {
        const cart = await current.json();
        if (cart && cart.attributes && cart.attributes[CART_ATTRIBUTE] === epik) {
          writeState(epik, tokenOnly(cart.token) || cartCookie || 'unknown');
          return 'already-stored';
        }
      }
      const attributes = {};
      attributes[CART_ATTRIBUTE] = epik;
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
      writeState(epik, tokenOnly(cart && cart.token) || tokenOnly(readCookie('cart')) || 'unknown');
      return 'stored';
    } catch (error) {
      return 'failed';
    }
  }

  async function run() {
    const epik = currentEpik(readState());
    if (!epik) {
      return 'no-epik';
    }
    const allowed = await consentNow(() => {
      window.pinrelayEpik = storeEpik(epik);
    });
    return allowed ? storeEpik(epik) : 'no-consent';
  }

  window.pinrelayEpik = run();
})();
