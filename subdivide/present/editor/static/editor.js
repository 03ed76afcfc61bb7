/* subdivide edit — the plan editor page.
 * The server computes every figure; this page draws and sends edits.
 * User text (block and sub-area names, reasons, messages) is set with textContent only. */
(function () {
  'use strict';

  const TOKEN = new URLSearchParams(location.search).get('t') || '';
  const GSI_URL = 'https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png';
  const GSI_ATTR = '<a href="https://maps.gsi.go.jp/development/ichiran.html" target="_blank" rel="noopener noreferrer">地理院タイル</a>';

  const I18N = {
    ja: {
      title: '細分化エリア 編集', basemap: '背景地図（地理院タイル）', tool_click: 'クリック', tool_brush: 'ブラシ',
      tool_rect: '矩形', tool_lasso: '投げ縄', tool_oaza: '大字ごと', tool_island: '離島例外',
      tip_click: '町丁・字をクリックして選んだ地域に塗ります', tip_brush: 'ボタンを押したままなぞって塗ります',
      tip_rect: 'ドラッグした矩形の中を塗ります', tip_lasso: '囲んだ範囲の中を塗ります',
      tip_oaza: 'クリックした町丁・字と同じ大字をまとめて塗ります', tip_island: 'クリックした町丁・字を離島例外にします（理由が必要）',
      paint_into: '塗る地域:', undo: '元に戻す', redo: 'やり直す', spill_L: '漏れ距離 L', subareas: '地域',
      col_no: '番号', col_name: '地域名', col_blocks: '町丁字', col_pop: '人口', col_hh: '世帯', col_area: '面積 km²',
      col_core: '中心部', col_circle: '円モデル', col_spared: '免れる割合',
      tip_blocks: '町丁・字の数', tip_core: '隣の地域の配信が届かない中心部の面積割合（厳密な多角形モデル）',
      tip_circle: '同じ面積の円で計算した割合（試行報告のモデル）',
      tip_spared: 'この地域だけに配信したとき、漏れを含めても受信しない市民の割合',
      add: '地域を追加', rename: '名前を変更', up: '↑', down: '↓', merge_into: '統合先', merge: '選んだ地域を統合',
      delete: '削除', renumber: '番号を振り直す', checks: 'チェック', exposures: '大きい漏れ（上位）', islands: '離島例外',
      compare: '比較', compare_btn: '比較する', save: '保存', save_btn: '保存する',
      ask_name: '新しい地域名（「●●地域」）', ask_reason: '離島例外の理由', ask_delete_into: 'この地域の町丁・字を移す先',
      confirm_overwrite: 'すでにあるファイルを上書きしますか？', saved: '保存しました: ', draft: '計画が無効なため下書きとして保存しました: ',
      no_findings: '問題はありません', ms: '再計算 {ms} ms', ms_first: '初回計算 {ms} ms', moved: '移動した町丁・字: {n}',
      exposure_line: '{from} → {to}: {pop} 人', island_off: '例外を外す', valid: '有効な計画', invalid: '無効（保存は下書きのみ）',
      renumber_confirm: '番号（地域コード）を表示順に振り直します。よろしいですか？', lang: 'English',
    },
    en: {
      title: 'Sub-area plan editor', basemap: 'Background (GSI tiles)', tool_click: 'Click', tool_brush: 'Brush',
      tool_rect: 'Rectangle', tool_lasso: 'Lasso', tool_oaza: 'Whole 大字', tool_island: 'Island exception',
      tip_click: 'Click a town-block to paint it into the chosen sub-area', tip_brush: 'Hold the button and sweep to paint',
      tip_rect: 'Paint the blocks inside a dragged rectangle', tip_lasso: 'Paint the blocks inside a drawn outline',
      tip_oaza: 'Paint every block of the clicked block\'s 大字', tip_island: 'Make the clicked block an island exception (needs a reason)',
      paint_into: 'Paint into:', undo: 'Undo', redo: 'Redo', spill_L: 'Spill distance L', subareas: 'Sub-areas',
      col_no: 'No.', col_name: 'Name', col_blocks: 'Blocks', col_pop: 'Population', col_hh: 'Households', col_area: 'Area km²',
      col_core: 'Core', col_circle: 'Circle', col_spared: 'Spared',
      tip_blocks: 'number of town-blocks', tip_core: 'share of the area beyond L from the border (exact polygon model)',
      tip_circle: 'the same share for a circle of equal area (trial report model)',
      tip_spared: 'share of residents who do not receive an alert sent to this sub-area only, spill included',
      add: 'Add sub-area', rename: 'Rename', up: '↑', down: '↓', merge_into: 'Merge into', merge: 'Merge selected',
      delete: 'Delete', renumber: 'Renumber', checks: 'Checks', exposures: 'Largest exposures', islands: 'Island exceptions',
      compare: 'Compare', compare_btn: 'Compare', save: 'Save', save_btn: 'Save',
      ask_name: 'New sub-area name (「●●地域」)', ask_reason: 'Reason for the island exception', ask_delete_into: 'Move its blocks to',
      confirm_overwrite: 'Replace the existing file?', saved: 'Saved: ', draft: 'The plan is invalid: saved as a draft: ',
      no_findings: 'No problems', ms: 'recomputed in {ms} ms', ms_first: 'first computed in {ms} ms', moved: 'blocks moved: {n}',
      exposure_line: '{from} → {to}: {pop} people', island_off: 'remove', valid: 'valid plan', invalid: 'invalid (drafts only)',
      renumber_confirm: 'Renumber the sub-areas (codes change) in display order?', lang: '日本語',
    },
  };
  let lang = 'ja';
  const t = (k) => (I18N[lang][k] !== undefined ? I18N[lang][k] : k);
  const fmt = (k, vals) => t(k).replace(/\{(\w+)\}/g, (_, n) => String(vals[n]));

  function applyLanguage() {
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll('[data-i18n-title]').forEach((el) => { el.title = t(el.dataset.i18nTitle); });
    document.getElementById('lang').textContent = t('lang');
    if (S.figures) renderFigures();
  }

  // ------------------------------------------------------------------ state
  const S = {
    blocks: null, sub: [], table: [], figures: null, palette: [], active: null, selected: new Set(),
    layers: [], tool: 'click', bandLayer: null, moved: new Set(), busy: false,
  };
  window.editorState = S;  // for tests and the console

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function msg(text, isError) {
    const m = document.getElementById('message');
    m.textContent = text || '';
    m.className = isError ? 'error' : '';
  }

  async function api(path, body) {
    const opts = { headers: { 'X-Editor-Token': TOKEN } };
    if (body !== undefined) {
      opts.method = 'POST';
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch('/api/' + path, opts);
    const data = await r.json();
    if (!r.ok) { const e = new Error(lang === 'ja' ? data.message_ja : data.message); e.status = r.status; e.data = data; throw e; }
    return data;
  }

  async function act(name, body) {
    if (S.busy) return null;
    S.busy = true;
    try {
      const res = await api(name, body || {});
      msg('');
      applyUpdate(res);
      return res;
    } catch (e) {
      msg(e.message, true);
      if (e.status === 409) throw e;
      return null;
    } finally {
      S.busy = false;
    }
  }
  window.editorAct = act;

  // ------------------------------------------------------------------ map
  // one canvas for everything drawn: a second canvas on top would swallow the clicks
  const map = L.map('map', { preferCanvas: true, zoomSnap: 0.25, boxZoom: false });
  window.editorMap = map;  // for tests and the console
  map.attributionControl.setPrefix(false);
  const gsi = L.tileLayer(GSI_URL, { attribution: GSI_ATTR, maxNativeZoom: 18, maxZoom: 19, opacity: 0.8 });
  const renderer = L.canvas({ padding: 0.3, tolerance: 2 });
  let blockLayer = null;

  function colourOf(s) {
    const i = S.table.findIndex((r) => r.subarea === s);
    return i < 0 ? '#999999' : S.palette[i % S.palette.length];
  }
  function styleFor(i) {
    const s = S.sub[i];
    const det = S.detached && S.detached.has(i);
    const isl = S.islandIdx && S.islandIdx.has(i);
    return {
      renderer, fillColor: colourOf(s), fillOpacity: S.selected.has(s) ? 0.75 : 0.55,
      color: det ? '#d00000' : (isl ? '#1040ff' : '#333333'), weight: det || isl ? 3 : 0.6,
      dashArray: det ? '4 3' : null, opacity: 1,
    };
  }
  function restyle(indices) {
    for (const i of indices) { const l = S.layers[i]; if (l) l.setStyle(styleFor(i)); }
  }
  function restyleAll() { restyle(S.sub.map((_, i) => i)); }

  function tooltipFor(p) {
    return () => {
      const d = el('div');
      d.appendChild(el('strong', p.name || p.key));
      const r = S.table.find((x) => x.subarea === S.sub[p.i]);
      d.appendChild(el('div', (r ? r.name : '') + ' · ' + p.key));
      d.appendChild(el('div', t('col_pop') + ' ' + p.population.toLocaleString()));
      return d;
    };
  }

  function buildMap() {
    blockLayer = L.geoJSON(S.blocks, {
      renderer,
      style: (f) => styleFor(f.properties.i),
      onEachFeature: (f, layer) => {
        S.layers[f.properties.i] = layer;
        layer.bindTooltip(tooltipFor(f.properties), { sticky: true });
        layer.on('click', (ev) => onBlockClick(f.properties, ev));
        layer.on('mouseover', () => { if (S.tool === 'brush' && brushing) brushAdd(f.properties); });
      },
    }).addTo(map);
    map.fitBounds(blockLayer.getBounds());
  }

  function activeNum() { return S.active; }

  function paintKeys(keys) {
    if (!keys.length || S.active === null) return null;
    return act('paint', { keys, subarea: activeNum() });
  }

  async function onBlockClick(p) {
    if (S.tool === 'click') return paintKeys([p.key]);
    if (S.tool === 'oaza') {
      const keys = S.blocks.features.filter((f) => f.properties.oaza === p.oaza).map((f) => f.properties.key);
      return paintKeys(keys);
    }
    if (S.tool === 'island') {
      const on = !(S.islandIdx && S.islandIdx.has(p.i));
      if (!on) return act('island', { key: p.key, on: false });
      const reason = window.prompt(t('ask_reason') + ' — ' + (p.name || p.key), '');
      if (reason === null) return null;
      return act('island', { key: p.key, on: true, reason });
    }
    return null;
  }

  // brush, rectangle, lasso
  let brushing = false, brushKeys = new Set(), drawStart = null, drawPath = [], drawShape = null;
  function brushAdd(p) {
    if (!brushKeys.has(p.key)) {
      brushKeys.add(p.key);
      const l = S.layers[p.i];
      if (l) l.setStyle({ fillColor: colourOf(S.active), fillOpacity: 0.9 });
    }
  }
  map.on('mousedown', (ev) => {
    if (S.tool === 'brush') { brushing = true; brushKeys = new Set(); }
    if (S.tool === 'rect' || S.tool === 'lasso') { drawStart = ev.latlng; drawPath = [ev.latlng]; }
  });
  map.on('mousemove', (ev) => {
    if (!drawStart) return;
    drawPath.push(ev.latlng);
    if (drawShape) map.removeLayer(drawShape);
    drawShape = S.tool === 'rect'
      ? L.rectangle(L.latLngBounds(drawStart, ev.latlng), { renderer, color: '#000', weight: 1, fill: false, interactive: false, dashArray: '4 4' })
      : L.polyline(drawPath, { renderer, color: '#000', weight: 1, interactive: false, dashArray: '4 4' });
    drawShape.addTo(map);
  });
  map.on('mouseup', (ev) => {
    if (brushing) { brushing = false; paintKeys(Array.from(brushKeys)); }
    if (drawStart) {
      const keys = S.tool === 'rect' ? keysInRect(L.latLngBounds(drawStart, ev.latlng)) : keysInLasso(drawPath.concat([ev.latlng]));
      S.lastSelection = { tool: S.tool, points: drawPath.length + 1, blocks: keys.length };
      drawStart = null; drawPath = [];
      if (drawShape) { map.removeLayer(drawShape); drawShape = null; }
      paintKeys(keys);
    }
  });
  function keysInRect(b) {
    return S.blocks.features.filter((f) => f.properties.pt && b.contains(L.latLng(f.properties.pt))).map((f) => f.properties.key);
  }
  function keysInLasso(path) {
    if (path.length < 3) return [];
    const xs = path.map((p) => p.lng), ys = path.map((p) => p.lat);
    const inside = (x, y) => {
      let c = false;
      for (let i = 0, j = xs.length - 1; i < xs.length; j = i++) {
        if ((ys[i] > y) !== (ys[j] > y) && x < ((xs[j] - xs[i]) * (y - ys[i])) / (ys[j] - ys[i]) + xs[i]) c = !c;
      }
      return c;
    };
    return S.blocks.features.filter((f) => f.properties.pt && inside(f.properties.pt[1], f.properties.pt[0])).map((f) => f.properties.key);
  }
  window.editorSelect = { keysInRect: (s, w, n, e) => keysInRect(L.latLngBounds([s, w], [n, e])), keysInLasso: (pts) => keysInLasso(pts.map((p) => L.latLng(p))) };

  function setTool(tool) {
    S.tool = tool;
    const drawing = tool === 'brush' || tool === 'rect' || tool === 'lasso';
    if (drawing) map.dragging.disable(); else map.dragging.enable();
    document.getElementById('map').classList.toggle('painting', tool !== 'click');
  }
  document.querySelectorAll('input[name=tool]').forEach((r) => r.addEventListener('change', () => setTool(r.value)));

  // ------------------------------------------------------------------ figures
  function pct(x) { return x === null || x === undefined ? '–' : (100 * x).toFixed(0) + '%'; }

  function applyUpdate(res) {
    if (!res) return;
    S.edited = true;
    if (res.changed) for (const [i, s] of res.changed) S.sub[i] = s;
    if (res.table) S.table = res.table;
    if (res.figures) S.figures = res.figures;
    if (res.compare) renderCompare(res.compare);
    if (res.saved) {
      const files = res.saved.written.join(', ');
      msg((res.saved.kind === 'draft' ? t('draft') : t('saved')) + files, res.saved.kind === 'draft');
    }
    if (S.active === null || !S.table.some((r) => r.subarea === S.active)) S.active = S.table.length ? S.table[0].subarea : null;
    if (res.figures || res.table) {
      updateMarks();
      if (res.table) restyleAll(); else restyle((res.changed || []).map((c) => c[0]));
      renderFigures();
      refreshBands();
    }
  }

  function updateMarks() {
    const idx = new Map(S.blocks.features.map((f) => [f.properties.key, f.properties.i]));
    const prevDet = S.detached || new Set(), prevIsl = S.islandIdx || new Set();
    S.detached = new Set();
    for (const r of S.figures.subareas) for (const k of r.detached_keys) S.detached.add(idx.get(k));
    S.islandIdx = new Set(S.figures.islands.map((x) => idx.get(x.key)));
    restyle(new Set([...prevDet, ...S.detached, ...prevIsl, ...S.islandIdx]));
  }

  function renderFigures() {
    const f = S.figures;
    const p = f.target_share;
    const tb = document.querySelector('#subareas tbody');
    tb.replaceChildren();
    f.subareas.forEach((r, n) => {
      const tr = el('tr');
      tr.dataset.subarea = r.subarea;
      if (r.subarea === S.active) tr.className = 'active';
      const sw = el('span', '', 'swatch');
      sw.style.background = S.palette[n % S.palette.length];
      const td0 = el('td'); td0.appendChild(sw); tr.appendChild(td0);
      tr.appendChild(el('td', r.subarea));
      tr.appendChild(el('td', r.name, 'name'));
      tr.appendChild(el('td', r.n_blocks));
      tr.appendChild(el('td', r.population.toLocaleString()));
      tr.appendChild(el('td', r.households.toLocaleString()));
      tr.appendChild(el('td', r.area_km2.toFixed(1)));
      tr.appendChild(el('td', pct(r.core_share), r.core_share < p ? 'low' : ''));
      tr.appendChild(el('td', pct(r.circle_share), r.circle_share < p ? 'low' : ''));
      tr.appendChild(el('td', pct(r.spared_share)));
      tr.addEventListener('click', () => selectSubarea(r.subarea));
      tb.appendChild(tr);
    });
    const act = f.subareas.find((r) => r.subarea === S.active);
    document.getElementById('active-name').textContent = act ? act.subarea + ' ' + act.name : '';
    const mt = document.getElementById('merge-target');
    const keep = mt.value;
    mt.replaceChildren();
    for (const r of f.subareas) { const o = el('option', r.subarea + ' ' + r.name); o.value = r.subarea; mt.appendChild(o); }
    if (keep) mt.value = keep;
    const ul = document.getElementById('findings');
    ul.replaceChildren();
    const head = el('li', f.valid ? t('valid') : t('invalid'), f.valid ? 'info' : 'error');
    ul.appendChild(head);
    for (const x of f.findings) {
      const li = el('li', '[' + x.rule + '] ' + (lang === 'ja' ? x.message_ja : x.message) + (x.features.length ? ': ' + x.features.slice(0, 8).join(', ') + (x.features.length > 8 ? ' …' : '') : ''), x.severity);
      li.dataset.rule = x.rule;
      ul.appendChild(li);
    }
    const names = new Map(f.subareas.map((r) => [r.subarea, r.name]));
    const ol = document.getElementById('exposures');
    ol.replaceChildren();
    for (const e of f.exposures) ol.appendChild(el('li', fmt('exposure_line', { from: names.get(e.from), to: names.get(e.to), pop: Math.round(e.population).toLocaleString() })));
    const il = document.getElementById('islands');
    il.replaceChildren();
    for (const x of f.islands) {
      const li = el('li', x.key + ': ' + x.reason + ' ');
      const b = el('button', t('island_off'));
      b.type = 'button';
      b.addEventListener('click', () => act('island', { key: x.key, on: false }));
      li.appendChild(b);
      il.appendChild(li);
    }
    document.getElementById('undo').disabled = !f.can_undo;
    document.getElementById('redo').disabled = !f.can_redo;
    document.getElementById('L-value').textContent = f.distance_km.toFixed(1);
    document.getElementById('L').value = f.distance_km;
    document.getElementById('timing').textContent = fmt(S.edited ? 'ms' : 'ms_first', { ms: f.compute_ms });
  }

  function selectSubarea(num) {
    S.active = num;
    S.selected = new Set([num]);
    restyleAll();
    renderFigures();
    refreshBands();
  }

  async function refreshBands() {
    if (S.active === null) return;
    const num = S.active;
    const seq = (S.bandSeq = (S.bandSeq || 0) + 1);
    try {
      const b = await api('bands?subarea=' + encodeURIComponent(num));
      if (seq !== S.bandSeq) return;
      if (S.bandLayer) map.removeLayer(S.bandLayer);
      S.bandLayer = L.layerGroup();
      if (b.reach) L.geoJSON(b.reach, { renderer, interactive: false, style: { color: '#c00', weight: 1, fillColor: '#f66', fillOpacity: 0.15, dashArray: '3 3' } }).addTo(S.bandLayer);
      if (b.core) L.geoJSON(b.core, { renderer, interactive: false, style: { color: '#060', weight: 1.5, fill: false } }).addTo(S.bandLayer);
      S.bandLayer.addTo(map);
      document.body.dataset.bands = String(num) + '@' + b.distance_km;
      document.body.dataset.bandsSeq = String(seq);
    } catch (e) { msg(e.message, true); }
  }

  // ------------------------------------------------------------------ compare
  function renderCompare(c) {
    document.getElementById('compare-summary').textContent = fmt('moved', { n: c.moved_count });
    const tb = document.querySelector('#compare-table tbody');
    tb.replaceChildren();
    const hdr = el('tr');
    for (const h of ['col_name', 'col_blocks', 'col_pop', 'col_area', 'col_core']) hdr.appendChild(el('th', t(h)));
    tb.appendChild(hdr);
    const d = (v, digits, scale) => (v === null ? '–' : (v >= 0 ? '+' : '') + (v * (scale || 1)).toFixed(digits));
    for (const r of c.subareas) {
      const tr = el('tr');
      tr.appendChild(el('td', r.other_name + ' → ' + (r.current_name || '–')));
      tr.appendChild(el('td', d(r.n_blocks.change, 0)));
      tr.appendChild(el('td', d(r.population.change, 0)));
      tr.appendChild(el('td', d(r.area_km2.change, 1)));
      tr.appendChild(el('td', d(r.core_share.change, 0, 100) + '%'));
      tb.appendChild(tr);
    }
    S.moved = new Set(c.moved.map((m) => m.key));
    const idx = new Map(S.blocks.features.map((f) => [f.properties.key, f.properties.i]));
    for (const k of S.moved) { const l = S.layers[idx.get(k)]; if (l) l.setStyle({ color: '#ff00ff', weight: 2.5 }); }
  }

  // ------------------------------------------------------------------ buttons
  const $ = (id) => document.getElementById(id);
  $('undo').addEventListener('click', () => act('undo'));
  $('redo').addEventListener('click', () => act('redo'));
  $('L').addEventListener('change', () => act('distance', { distance_km: parseFloat($('L').value) }));
  $('L').addEventListener('input', () => { $('L-value').textContent = parseFloat($('L').value).toFixed(1); });
  $('add').addEventListener('click', async () => {
    const name = window.prompt(t('ask_name'), '');
    if (name === null) return;
    const res = await act('add', { name });
    if (res && res.added) selectSubarea(res.added);
  });
  $('rename').addEventListener('click', () => {
    const cur = S.table.find((r) => r.subarea === S.active);
    const name = window.prompt(t('ask_name'), cur ? cur.name : '');
    if (name !== null) act('rename', { subarea: S.active, name });
  });
  function move(delta) {
    const order = S.table.map((r) => r.subarea);
    const i = order.indexOf(S.active), j = i + delta;
    if (i < 0 || j < 0 || j >= order.length) return;
    [order[i], order[j]] = [order[j], order[i]];
    act('order', { order });
  }
  $('up').addEventListener('click', () => move(-1));
  $('down').addEventListener('click', () => move(1));
  $('merge').addEventListener('click', () => {
    const into = parseInt($('merge-target').value, 10);
    if (S.active !== null && into !== S.active) act('merge', { subareas: [S.active], into });
  });
  $('delete').addEventListener('click', () => {
    const into = parseInt($('merge-target').value, 10);
    const r = S.figures.subareas.find((x) => x.subarea === S.active);
    if (!r) return;
    act('delete', r.n_blocks === 0 ? { subarea: S.active } : { subarea: S.active, into });
  });
  $('renumber').addEventListener('click', () => { if (window.confirm(t('renumber_confirm'))) act('renumber'); });
  $('compare').addEventListener('click', () => act('compare', { id: $('compare-with').value }));
  $('save').addEventListener('click', async () => {
    const body = { path: $('out').value, csv: $('csv').checked };
    try {
      await act('save', body);
    } catch (e) {
      if (e.status === 409 && window.confirm(t('confirm_overwrite') + '\n' + e.message)) {
        try { await act('save', Object.assign(body, { overwrite: true })); } catch (e2) { msg(e2.message, true); }
      }
    }
  });
  $('basemap').addEventListener('change', () => { if ($('basemap').checked) gsi.addTo(map); else map.removeLayer(gsi); });
  $('lang').addEventListener('click', () => { lang = lang === 'ja' ? 'en' : 'ja'; applyLanguage(); });
  document.addEventListener('keydown', (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && ev.key === 'z') { ev.preventDefault(); act(ev.shiftKey ? 'redo' : 'undo'); }
    if ((ev.ctrlKey || ev.metaKey) && ev.key === 'y') { ev.preventDefault(); act('redo'); }
  });

  // ------------------------------------------------------------------ start
  api('init').then((d) => {
    S.blocks = d.blocks;
    S.sub = d.sub;
    S.table = d.table;
    S.palette = d.palette;
    S.figures = d.figures;
    S.active = d.table.length ? d.table[0].subarea : null;
    S.selected = new Set(S.active === null ? [] : [S.active]);
    $('source').textContent = d.source;
    $('out').value = d.default_output;
    $('L').min = d.l_band[0];
    $('L').max = d.l_band[1];
    const cw = $('compare-with');
    for (const c of d.compare) { const o = el('option', c.label); o.value = c.id; cw.appendChild(o); }
    buildMap();
    updateMarks();
    applyLanguage();
    refreshBands();
    document.body.dataset.ready = '1';
  }).catch((e) => { msg(e.message, true); document.body.dataset.ready = 'error'; });
})();
