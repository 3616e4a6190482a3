<?php
/**
 * Plugin Name: pinrelay consent
 * Description: Stores the shopper's consent, as the WP Consent API answers it, in the order's meta at checkout, so that pinrelay can honour it on the server side.
 * Version: 1.0.0
 * License: MIT
 *
 * pinrelay: the shopper's choice with the WooCommerce order.
 *
 * WooCommerce's order webhooks say nothing of what the shopper chose in the site's cookie banner.
 * At checkout this snippet asks the WP Consent API plugin (https://wordpress.org/plugins/wp-consent-api/,
 * github.com/Really-Simple-Plugins/wp-consent-level-api: api.php, config.php) what the visitor
 * chose, and stores the answer in the order's meta `_pinrelay_consent`; the order.created /
 * order.updated webhooks carry it in `meta_data` and pinrelay's consent policy (CONSENT_POLICY,
 * docs/privacy.md) decides from it whether, and how, the order reaches Pinterest.
 *
 * What it stores: a JSON text of consent flags, nothing about the person:
 *   {"v":1,"via":"wp-consent-api","type":"optin","marketing":"deny","statistics":"allow","preferences":"",
 *    "allowed":{"marketing":false,"statistics":true,"preferences":true}}
 *   type: wp_get_consent_type(), "optin" or "optout" (the banner plugin sets it, often by region);
 *   marketing, statistics, preferences: the visitor's choice for the category, the value of the
 *     consent cookie the WP Consent API keeps (`wp_consent_<category>`: "allow" or "deny"), "" when
 *     they have not chosen;
 *   allowed: wp_has_consent( <category> ), what the API allows now (under "optout" a category the
 *     visitor has not refused is allowed).
 * A site without consent management (the WP Consent API not active, or no banner plugin setting a
 * consent type) gets nothing stored: pinrelay counts its orders as orders without a recorded choice.
 *
 * Install: save this file as wp-content/mu-plugins/pinrelay-consent.php (a must-use plugin is
 * loaded on every request, nothing to activate), or paste it without its first line into a code
 * snippets plugin. It hooks both checkouts: the classic one (woocommerce_checkout_create_order,
 * before the order is saved) and the block checkout (woocommerce_store_api_checkout_update_order_from_request,
 * before the Store API saves the order). Orders created in the admin, by the REST API or by a
 * point-of-sale plugin have no visitor, hence nothing stored.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

if ( ! function_exists( 'pinrelay_consent_record' ) ) {
	/**
	 * What the WP Consent API answers for the visitor of this request, as the JSON text stored in
	 * the order; null when the site has no consent management.
	 *
	 * @return string|null
	 */
	function pinrelay_consent_record() {
		if ( ! function_exists( 'wp_has_consent' ) || ! function_exists( 'wp_get_consent_type' ) ) {
			return null;
		}
		$type = wp_get_consent_type();
		if ( 'optin' !== $type && 'optout' !== $type ) {
			return null;
		}
		// The cookie prefix as the WP Consent API reads it (its config.php: filterable, default wp_consent).
		$prefix  = apply_filters( 'wp_consent_cookie_prefix', 'wp_consent' );
		$record  = array(
			'v'    => 1,
			'via'  => 'wp-consent-api',
			'type' => $type,
		);
		$allowed = array();
		foreach ( array( 'marketing', 'statistics', 'preferences' ) as $category ) {
			$name                = $prefix . '_' . $category;
			$cookie              = isset( $_COOKIE[ $name ] ) ? $_COOKIE[ $name ] : ''; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput -- compared with two fixed values only
			$record[ $category ] = in_array( $cookie, array( 'allow', 'deny' ), true ) ? $cookie : '';
			$allowed[ $category ] = (bool) wp_has_consent( $category );
		}
		$record['allowed'] = $allowed;
		return wp_json_encode( $record );
	}
}

if ( ! function_exists( 'pinrelay_store_consent' ) ) {
	/**
	 * Puts the visitor's consent in the order's meta, before WooCommerce saves the order.
	 *
	 * @param WC_Order $order The order being placed.
	 * @return void
	 */
	function pinrelay_store_consent( $order ) {
		$record = pinrelay_consent_record();
		if ( null === $record || false === $record ) {
			return;
		}
		$order->update_meta_data( '_pinrelay_consent', $record );
	}
}

add_action( 'woocommerce_checkout_create_order', 'pinrelay_store_consent', 10, 1 );
add_action( 'woocommerce_store_api_checkout_update_order_from_request', 'pinrelay_store_consent', 10, 1 );
